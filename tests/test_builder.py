"""The RUN_DIR builder: configs, provenance columns, gates, deterministic splits and the Hub-like folder."""

from __future__ import annotations

import hashlib
import json

import pytest
from datasets import ClassLabel, load_dataset
from helpers.builder_support import make_run_dir

from erc_synth.dataset_scripts.builder import (
    CONFIG_NAMES,
    SyntheticDialogues,
    assign_splits,
    build,
    build_dataset_dict,
    parse_ratios,
    write_hub_folder,
    write_minimal_card,
)
from erc_synth.dataset_scripts.core.errors import ErcSynthError, RunDirError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.dataset_scripts.schema import dialogues_to_utterances


def _digests(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_configs_cover_every_benchmark_and_mode():
    assert set(CONFIG_NAMES) == {f"{b}-{m}" for b in ("meld", "emorynlp", "iemocap") for m in ("natural", "balanced")}
    assert {c.name for c in SyntheticDialogues.BUILDER_CONFIGS} == set(CONFIG_NAMES)


def test_balanced_build_has_provenance_gates_and_rejection_counts(tmp_path):
    run = make_run_dir(tmp_path / "run", "meld", "balanced", n=30)
    dd, report = build_dataset_dict(run)
    labels = list(get_benchmark("meld").labels)
    assert list(dd) == ["train", "validation", "test"]
    assert dd["train"].features["emotions"].feature.names == labels
    assert dd["train"].features["target_emotion"] == ClassLabel(names=labels)
    rows = [row for split in dd.values() for row in split]
    indices = sorted(r["index"] for r in rows)
    # 30 requested, index 11 never accepted, 5 exact copy of 1, 9 near copy of 2
    assert indices == [i for i in range(30) if i not in (5, 9, 11)]
    assert report.accepted == 29 and report.failed_indices == 1 and report.missing_indices == 0
    assert report.rejected_attempts == 5
    assert report.rejections_by_reason == {"json_parse_error": 2, "too_few_turns": 1, "unknown_label": 2}
    assert (report.gates.exact_duplicates, report.gates.near_duplicates, report.gates.contaminated) == (1, 1, 0)
    row = next(r for r in rows if r["index"] == 3)
    assert row["seed"] == 7 * 100_000 + 3 and row["target_emotion"] == 3 % 7
    assert row["dialogue_id"] == "meld-balanced-000003"
    assert report.split_sizes == {s: len(dd[s]) for s in dd}
    assert sum(report.split_sizes.values()) == 27


def test_natural_build_has_null_target_emotion_and_counts_an_incomplete_run(tmp_path):
    made = make_run_dir(tmp_path / "made", "iemocap", "natural", n=12, plant_duplicates=False)
    settings = json.loads((made / "manifest.json").read_text())["settings"]
    run = tmp_path / "run"  # the same records in a run that asked for 15: three indices never generated
    RunStore.create_or_open(run, {**settings, "num_dialogues": 15}).append(RunStore.open(made).records())
    dd, report = build_dataset_dict(run)
    assert (report.requested_dialogues, report.failed_indices, report.missing_indices) == (15, 0, 3)
    rows = [row for split in dd.values() for row in split]
    assert len(rows) == 12 and all(r["target_emotion"] is None for r in rows)
    assert dd["train"].features["emotions"].feature.names == list(get_benchmark("iemocap").labels)


def test_splits_follow_ratios_and_seed_and_keep_balanced_strata():
    items = [(i, i % 7) for i in range(70)]
    a = assign_splits(items, (0.8, 0.1, 0.1), seed=0)
    assert {k: len(v) for k, v in a.items()} == {"train": 56, "validation": 7, "test": 7}
    assert sorted(a["train"] + a["validation"] + a["test"]) == list(range(70))
    assert len({i % 7 for i in a["validation"]}) == 7  # every target emotion reaches every split
    assert assign_splits(items, (0.8, 0.1, 0.1), seed=0) == a
    assert assign_splits(items, (0.8, 0.1, 0.1), seed=1) != a
    assert {k: len(v) for k, v in assign_splits(items, (0.5, 0.0, 0.5), 0).items()}["validation"] == 0


@pytest.mark.parametrize("ratios", ["0.8,0.1", "0.8,0.3,0.1", "a,b,c", (0.9, -0.1, 0.2)])
def test_bad_ratios_are_refused(ratios):
    with pytest.raises(ErcSynthError, match="ratio"):
        parse_ratios(ratios)


def test_folder_loads_like_a_hub_repo_and_rebuilds_byte_identical(tmp_path):
    run = make_run_dir(tmp_path / "run", "emorynlp", "balanced", n=24)
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        dd, _ = build_dataset_dict(run, split_seed=3)
        write_minimal_card(out, write_hub_folder(dd, out))
    assert _digests(first) == _digests(second)
    assert (first / "data/dialogues/train-00000-of-00001.parquet").is_file()
    assert (first / "data/utterances/test-00000-of-00001.parquet").is_file()
    dialogues = load_dataset(str(first))
    utterances = load_dataset(str(first), "utterances")
    labels = list(get_benchmark("emorynlp").labels)
    assert dialogues["train"].features["emotions"].feature.names == labels
    assert utterances["train"].features["emotion"].names == labels
    assert sum(len(d) for d in dialogues["train"]["utterances"]) == utterances["train"].num_rows
    assert dialogues["train"]["dialogue_id"] == dd["train"]["dialogue_id"]
    other_seed = tmp_path / "c"
    write_minimal_card(other_seed, write_hub_folder(build_dataset_dict(run, split_seed=4)[0], other_seed))
    assert _digests(other_seed) != _digests(first)


def test_wrong_or_broken_run_dirs_give_clear_errors(tmp_path):
    with pytest.raises(RunDirError, match=r"manifest\.json is missing"):
        build_dataset_dict(tmp_path / "nothing")
    run = make_run_dir(tmp_path / "run", "meld", "natural", n=4, plant_duplicates=False)
    store = RunStore.create_or_open(run, json.loads((run / "manifest.json").read_text())["settings"])
    store.append([{"index": 9, "attempt": 0, "seed": 1, "status": "accepted", "speakers": ["Ross"],
                   "utterances": ["Hi"], "emotions": [12], "target_emotion": None}])
    with pytest.raises(RunDirError, match=r"records\.jsonl:5: index 9 is beyond the run's 4 dialogues"):
        build_dataset_dict(run)
    empty = RunStore.create_or_open(tmp_path / "empty", json.loads((run / "manifest.json").read_text())["settings"])
    empty.append([{"index": 0, "attempt": 0, "seed": 1, "status": "rejected", "reason": "json_parse_error"}])
    with pytest.raises(RunDirError, match=r"no dialogue to build \(0 accepted.*json_parse_error 1"):
        build_dataset_dict(tmp_path / "empty")


def test_builder_class_serves_the_utterances_schema_and_never_a_stale_cache(tmp_path):
    run = make_run_dir(tmp_path / "run", "meld", "natural", n=10, plant_duplicates=False)
    lines = (run / "records.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["index"] != 9]  # index 9 comes later, changing the run
    assert len(kept) == len(lines) - 1
    (run / "records.jsonl").write_text("".join(kept))
    kwargs = {"cache_dir": str(tmp_path / "cache"), "config_name": "meld-natural", "run_dir": str(run),
              "schema": "utterances"}
    builder = SyntheticDialogues(**kwargs)
    builder.download_and_prepare()
    utterances = builder.as_dataset()
    assert builder.build_report is not None and builder.build_report.gates.kept == 9
    assert utterances["train"].features["emotion"].names == list(get_benchmark("meld").labels)
    total = sum(ds.num_rows for ds in utterances.values())
    store = RunStore.create_or_open(run, json.loads((run / "manifest.json").read_text())["settings"])
    store.append([{"index": 9, "attempt": 0, "seed": 1, "status": "accepted", "speakers": ["Ross", "Rachel"],
                   "utterances": ["We were on a break!", "Were we?"], "emotions": [3, 2], "target_emotion": None}])
    again = SyntheticDialogues(**kwargs)
    again.download_and_prepare()
    assert again.build_report is not None  # the changed run was rebuilt, not read from the cache
    assert sum(ds.num_rows for ds in again.as_dataset().values()) == total + 2
    assert again.build_report.missing_indices == 0 and again.build_report.requested_dialogues == 10
    reference = ("real test", [["We were on a break! Were we? I think so, said nobody at all today."]])
    decontaminated = SyntheticDialogues(**kwargs, reference=reference)
    decontaminated.download_and_prepare()  # another reference is another cache key: prepared, not reused
    assert decontaminated.build_report is not None
    assert decontaminated.build_report.gates.decontaminated_against == "real test"
    with pytest.raises(RunDirError, match="holds a meld-natural run, not meld-balanced"):
        SyntheticDialogues(**{**kwargs, "config_name": "meld-balanced"}).download_and_prepare()


def test_build_reads_the_run_store_once_and_returns_counts_that_match_the_data(tmp_path, monkeypatch):
    run = make_run_dir(tmp_path / "run", "meld", "balanced", n=30)
    reads = []
    real_records = RunStore.records
    monkeypatch.setattr(RunStore, "records", lambda self: reads.append(self.run_dir) or real_records(self))
    built = build(run, split_seed=2)
    assert reads == [run]
    labels = get_benchmark("meld").labels
    emotions = [e for split in built.dialogues.values() for row in split["emotions"] for e in row]
    assert built.label_counts == {label: emotions.count(i) for i, label in enumerate(labels)}
    assert [s.split for s in built.statistics] == ["train", "validation", "test"]
    assert (built.config_name, built.mode, built.benchmark.name) == ("meld-balanced", "balanced", "meld")
    assert built.manifest["provenance"]["model_sha"] == "abc123def"
    accepted = real_records(RunStore.open(run))
    firsts = {r.index: r for r in reversed(accepted) if r.is_accepted}
    hits = sum(r.target_emotion in r.emotions for r in firsts.values())
    assert built.report.target_realised == {"dialogues": 29, "with_target": hits, "share": round(hits / 29, 4)}


def test_the_builders_utterances_schema_and_the_converted_dialogues_give_the_same_rows(tmp_path):
    run = make_run_dir(tmp_path / "run", "iemocap", "balanced", n=12, plant_duplicates=False)
    builder = SyntheticDialogues(cache_dir=str(tmp_path / "cache"), config_name="iemocap-balanced", run_dir=str(run),
                                 schema="utterances")
    builder.download_and_prepare()
    direct = builder.as_dataset()
    converted = dialogues_to_utterances(build(run).dialogues)
    assert list(direct) == list(converted)
    for split in direct:
        assert direct[split].features == converted[split].features
        assert direct[split].to_list() == converted[split].to_list()
