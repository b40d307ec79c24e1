"""Every user error the console script can meet: exit 2, one line on stderr, no traceback, the culprit named.

Each probe runs the real ``erc-synth`` console script in a subprocess, as a user would. A probe is a function
of a scratch folder that prepares whatever files it needs and returns ``(argv, fragment)``: the arguments, and
the text the one-line error must contain (the flag, file, line, field or value at fault); a probe of an
environment variable returns ``(argv, fragment, {name: value})``, set for that run only. Probes are grouped by
area; add new ones to the area's section.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Probe = Callable[[Path], tuple]
PROBES: dict[str, Probe] = {}
#: Probes whose console-script run imports torch, datasets or evaluate before failing: the slow tier.
SLOW_PROBES: set[str] = set()


def probe(name: str, *, slow: bool = False) -> Callable[[Probe], Probe]:
    """Register a probe under a readable test id; ``slow``: it runs in the slow tier (``-m slow``)."""

    def register(function: Probe) -> Probe:
        assert name not in PROBES, f"duplicate probe {name}"
        PROBES[name] = function
        if slow:
            SLOW_PROBES.add(name)
        return function

    return register


# --- readers and statistics ------------------------------------------------------------------------------------


@probe("stats-unknown-benchmark")
def _stats_unknown_benchmark(tmp: Path) -> tuple[list[str], str]:
    return ["stats", "no-such-benchmark", "--data-dir", str(tmp)], "no-such-benchmark"


@probe("stats-broken-benchmark-file", slow=True)
def _stats_broken_benchmark_file(tmp: Path) -> tuple[list[str], str]:
    folder = Path(__file__).resolve().parent / "fixtures" / "meld" / "bad" / "unknown_label"
    return ["stats", "meld", "--data-dir", str(folder)], "train_sent_emo.csv:3"


# --- generation ------------------------------------------------------------------------------------------------


@probe("generate-backend-vllm-not-installed")
def _generate_backend_vllm_not_installed(tmp: Path) -> tuple[list[str], str]:
    # vLLM lives in its own venv (scripts/install-vllm.sh), never in the one that runs this suite
    return ["generate", "--benchmark", "meld", "--num-dialogues", "1", "--backend", "vllm", "--out",
            str(tmp / "run")], "install it with: bash scripts/install-vllm.sh"


@probe("generate-server-kind-without-openai-backend")
def _generate_server_kind_without_openai_backend(tmp: Path) -> tuple[list[str], str]:
    return ["generate", "--benchmark", "meld", "--num-dialogues", "1", "--backend", "tgi", "--endpoint",
            "http://127.0.0.1:9", "--server", "vllm", "--out", str(tmp / "run")], "--server"


def _generate_argv(tmp: Path, *extra: str, count: int = 2) -> list[str]:
    """``generate`` against a closed port: every probe below must fail before any server is contacted."""
    return ["generate", "--benchmark", "meld", "--num-dialogues", str(count), "--backend", "tgi", "--endpoint",
            "http://127.0.0.1:9", "--out", str(tmp / "run"), "--no-progress", *extra]


def _few_shot_bad_variable(tmp: Path, kind: str, fragment: str) -> tuple:
    """``generate --few-shot`` with ``ERC_SYNTH_REAL_DATA`` a file, an empty folder or another benchmark's."""
    if kind == "file":
        value = tmp / "data.txt"
        value.write_text("not a folder")
    else:
        value = tmp / "data"
        (value / ("emorynlp" if kind == "other-benchmark" else "")).mkdir(parents=True)
    return (_generate_argv(tmp, "--few-shot", "2"), f"environment variable ERC_SYNTH_REAL_DATA={value}: {fragment}",
            {"ERC_SYNTH_REAL_DATA": str(value)})


for _kind, _fragment in (("file", "is a file"), ("empty", "has no MELD files"),
                         ("other-benchmark", "has no MELD files")):
    probe(f"generate-few-shot-real-data-variable-{_kind}")(
        lambda tmp, kind=_kind, fragment=_fragment: _few_shot_bad_variable(tmp, kind, fragment))


for _flag, _value in (("--temperature", "nan"), ("--temperature", "-1"), ("--top-p", "0"), ("--top-p", "2"),
                      ("--top-k", "-5"), ("--typical-p", "1.5"), ("--repetition-penalty", "0"),
                      ("--request-timeout", "-1"), ("--batch-size", "0"), ("--max-attempts", "0"),
                      ("--concurrency", "0"), ("--max-new-tokens", "0")):
    probe(f"generate{_flag}-{_value}")(
        lambda tmp, flag=_flag, value=_value: (_generate_argv(tmp, flag, value), f"{flag} must be"))


@probe("generate-out-is-a-file")
def _generate_out_is_a_file(tmp: Path) -> tuple[list[str], str]:
    (tmp / "run").write_text("not a folder")
    return _generate_argv(tmp), f"{tmp / 'run'} is a file"


@probe("generate-smaller-count-than-the-run")
def _generate_smaller_count(tmp: Path) -> tuple[list[str], str]:
    from erc_synth.dataset_scripts.core.registry import get_benchmark
    from erc_synth.dataset_scripts.run_store import RunStore
    from erc_synth.generation.engine import GenerationConfig, run_settings

    config = GenerationConfig(benchmark="meld", num_dialogues=5, out=tmp / "run", backend="tgi",
                              endpoints=["http://127.0.0.1:9"])
    RunStore.create_or_open(tmp / "run", run_settings(config, get_benchmark("meld"))).close()
    return _generate_argv(tmp, count=3), "refusing to shrink it to 3"


@probe("inspect-record-that-is-not-an-object")
def _inspect_record_not_an_object(tmp: Path) -> tuple[list[str], str]:
    from erc_synth.dataset_scripts.run_store import RunStore

    store = RunStore.create_or_open(tmp / "run", {"benchmark": "meld", "mode": "natural", "num_dialogues": 2})
    store.append([{"index": 0, "attempt": 0, "seed": 1, "status": "rejected", "reason": "no_lines"}])
    with open(store.records_path, "a", encoding="utf-8") as fh:
        fh.write("null\n")
    return ["inspect", str(tmp / "run")], "records.jsonl:2: a record must be a JSON object"


@probe("inspect-folder-that-is-no-run")
def _inspect_folder_that_is_no_run(tmp: Path) -> tuple[list[str], str]:
    return ["inspect", str(tmp)], "manifest.json is missing"

@probe("run-preset-unknown-label-format")
def _run_preset_unknown_label_format(tmp: Path) -> tuple[list[str], str]:
    preset = tmp / "mine.yaml"
    preset.write_text("backend: transformers\nmodel: embedded\nseed: 1\nlabel_format: emoji\n"
                      "datasets:\n  - {benchmark: meld, mode: natural, num_dialogues: 1}\n")
    return ["run", "--preset", str(preset), "--out", str(tmp / "out")], "field 'label_format' has unknown value"


def _quickstart_argv(tmp: Path, *extra: str) -> list[str]:
    return ["run", "--preset", "quickstart", "--out", str(tmp / "out"), *extra]


@probe("run-real-data-variable-is-a-file")
def _run_real_data_variable_is_a_file(tmp: Path) -> tuple:
    (tmp / "data.txt").write_text("not a folder")
    return (_quickstart_argv(tmp), "environment variable ERC_SYNTH_REAL_DATA=",
            {"ERC_SYNTH_REAL_DATA": str(tmp / "data.txt")})


@probe("run-real-data-variable-without-the-benchmark")
def _run_real_data_variable_without_the_benchmark(tmp: Path) -> tuple:
    (tmp / "empty").mkdir()
    return (_quickstart_argv(tmp), f"environment variable ERC_SYNTH_REAL_DATA={tmp / 'empty'}: has no MELD files",
            {"ERC_SYNTH_REAL_DATA": str(tmp / "empty")})


@probe("run-real-data-variable-empty")
def _run_real_data_variable_empty(tmp: Path) -> tuple:
    return (_quickstart_argv(tmp), "environment variable ERC_SYNTH_REAL_DATA is set but empty",
            {"ERC_SYNTH_REAL_DATA": ""})


@probe("run-real-data-flag-without-the-benchmark")
def _run_real_data_flag_without_the_benchmark(tmp: Path) -> tuple:
    (tmp / "empty").mkdir()
    return _quickstart_argv(tmp, "--real-data", str(tmp / "empty")), f"--real-data {tmp / 'empty'}: has no MELD"


# --- build, cards and push -------------------------------------------------------------------------------------


def _run_dir(tmp: Path) -> Path:
    from helpers.builder_support import make_run_dir

    return make_run_dir(tmp / "run", "meld", "natural", n=4, plant_duplicates=False)


@probe("build-run-dir-without-manifest", slow=True)
def _build_run_dir_without_manifest(tmp: Path) -> tuple[list[str], str]:
    return ["build", str(tmp / "nothing"), "--out", str(tmp / "out")], "manifest.json is missing"


@probe("build-out-is-a-file", slow=True)
def _build_out_is_a_file(tmp: Path) -> tuple[list[str], str]:
    (tmp / "out.txt").write_text("mine")
    return ["build", str(_run_dir(tmp)), "--out", str(tmp / "out.txt")], "--out"


@probe("build-unknown-label-policy", slow=True)
def _build_unknown_label_policy(tmp: Path) -> tuple[list[str], str]:
    return ["build", str(_run_dir(tmp)), "--out", str(tmp / "out"), "--label-policy", "majority"], "--label-policy"


@probe("build-label-policy-without-audit", slow=True)
def _build_label_policy_without_audit(tmp: Path) -> tuple[list[str], str]:
    return ["build", str(_run_dir(tmp)), "--out", str(tmp / "out"), "--label-policy", "agree"], \
        "it needs --audit set to a judge"


@probe("build-all-folder-without-runs", slow=True)
def _build_all_folder_without_runs(tmp: Path) -> tuple[list[str], str]:
    (tmp / "runs").mkdir()
    return ["build-all", str(tmp / "runs"), "--out", str(tmp / "built")], "holds no RUN_DIR"


@probe("push-folder-not-built", slow=True)
def _push_folder_not_built(tmp: Path) -> tuple[list[str], str]:
    return ["push", str(tmp), "--repo", "org/x"], "not a built dataset folder"


@probe("push-folder-without-build-report", slow=True)
def _push_folder_without_build_report(tmp: Path) -> tuple[list[str], str]:
    (tmp / "data").mkdir()
    (tmp / "README.md").write_text("---\n---\n")
    return ["push", str(tmp), "--repo", "org/x"], "build_report.json is missing"


@probe("push-repo-without-org", slow=True)
def _push_repo_without_org(tmp: Path) -> tuple[list[str], str]:
    return ["push", str(tmp), "--repo", "no-org"], "--repo"


def _built_with_report(tmp: Path, edit: Callable[[dict], object] | None = None, text: str | None = None) -> Path:
    """A real build of a small RUN_DIR whose build_report.json is then hand-edited (``edit``) or replaced (``text``)."""
    import json

    from erc_synth.hub_cards.folder import build_folder

    build_folder(_run_dir(tmp), tmp / "built", decontaminate=False, quality_c2st=False)
    path = tmp / "built" / "build_report.json"
    if edit is not None:
        payload = json.loads(path.read_text())
        edit(payload)
        text = json.dumps(payload)
    path.write_text(text)
    return tmp / "built"


@probe("push-build-report-not-json", slow=True)
def _push_build_report_not_json(tmp: Path) -> tuple[list[str], str]:
    folder = _built_with_report(tmp, text='{"format_version": 2, "files": [')
    return ["push", str(folder), "--repo", "org/x"], "build_report.json: not valid JSON"


@probe("push-build-report-card-not-an-object", slow=True)
def _push_build_report_card_not_an_object(tmp: Path) -> tuple[list[str], str]:
    folder = _built_with_report(tmp, lambda p: p.update(card=5))
    return ["push", str(folder), "--repo", "org/x"], "build_report.json: field 'card' must be an object"


@probe("push-build-report-card-fields-wrong", slow=True)
def _push_build_report_card_fields_wrong(tmp: Path) -> tuple[list[str], str]:
    folder = _built_with_report(tmp, lambda p: p["card"].update(statistics=[{"rows": "many"}]))
    return ["push", str(folder), "--repo", "org/x"], "build_report.json: field 'card' is not what a build writes"


@probe("push-build-report-files-emptied", slow=True)
def _push_build_report_files_emptied(tmp: Path) -> tuple[list[str], str]:
    folder = _built_with_report(tmp, lambda p: p.update(files=[]))
    return ["push", str(folder), "--repo", "org/x"], "build_report.json: field 'files' must be a list of the paths"


@probe("push-build-report-digest-size-not-a-number", slow=True)
def _push_build_report_digest_size(tmp: Path) -> tuple[list[str], str]:
    folder = _built_with_report(tmp, lambda p: p["file_digests"]["README.md"].update(size="big"))
    return ["push", str(folder), "--repo", "org/x"], "file_digests entry 'README.md' must be"


# --- audit -----------------------------------------------------------------------------------------------------


def _audit_set(tmp: Path, benchmark: str = "meld") -> Path:
    """A one-dialogue set in the dialogues schema, laid out like a built folder, labelled for ``benchmark``."""
    from erc_synth.dataset_scripts.core.registry import get_benchmark
    from erc_synth.dataset_scripts.schema import dialogues_dataset

    folder = tmp / f"{benchmark}-set"
    (folder / "data" / "dialogues").mkdir(parents=True)
    dialogues_dataset(get_benchmark(benchmark), [
        {"dialogue_id": "d0", "speakers": ["A", "B", "A"], "utterances": ["Hi.", "Oh no!", "Great!"],
         "emotions": [0, 4, 1]},
    ]).to_parquet(str(folder / "data" / "dialogues" / "test-00000-of-00001.parquet"))
    return folder


def _audit_argv(folder: Path, judge: str, tmp: Path) -> list[str]:
    return ["audit", str(folder), "--benchmark", "meld", "--judge", judge, "--out", str(tmp / "audit")]


@probe("audit-label-names-differ-from-the-benchmark", slow=True)
def _audit_label_names_differ(tmp: Path) -> tuple[list[str], str]:
    return _audit_argv(_audit_set(tmp, "emorynlp"), "train", tmp), "field 'emotions' has labels"


@probe("audit-judge-trained-for-another-benchmark", slow=True)
def _audit_judge_for_another_benchmark(tmp: Path) -> tuple[list[str], str]:
    judge = tmp / "emorynlp-judge"
    judge.mkdir()
    (judge / "erc_synth_training.json").write_text(
        '{"benchmark": "emorynlp", "architecture": "emoberta", "training": {"architecture": "emoberta"}}'
    )
    return (_audit_argv(_audit_set(tmp), f"classifier:{judge}", tmp),
            "was trained for benchmark emorynlp, but the audit is for meld")


@probe("audit-judge-folder-not-found", slow=True)
def _audit_judge_not_found(tmp: Path) -> tuple[list[str], str]:
    return _audit_argv(_audit_set(tmp), "classifier:./no-such-judge", tmp), "no model folder at ./no-such-judge"


@probe("audit-judge-hub-id-not-found", slow=True)
def _audit_judge_hub_id_not_found(tmp: Path) -> tuple[list[str], str]:
    return _audit_argv(_audit_set(tmp), "classifier:nobody/no-such-judge", tmp), "classifier:nobody/no-such-judge"


@probe("audit-unknown-judge-kind", slow=True)
def _audit_unknown_judge_kind(tmp: Path) -> tuple[list[str], str]:
    return _audit_argv(_audit_set(tmp), "oracle", tmp), "unknown judge 'oracle'"


@probe("audit-real-data-variable-is-a-file", slow=True)
def _audit_real_data_variable_is_a_file(tmp: Path) -> tuple:
    (tmp / "data.txt").write_text("not a folder")
    return (_audit_argv(_audit_set(tmp), "train", tmp), "environment variable ERC_SYNTH_REAL_DATA=",
            {"ERC_SYNTH_REAL_DATA": str(tmp / "data.txt")})


@probe("audit-real-data-folder-missing", slow=True)
def _audit_real_data_folder_missing(tmp: Path) -> tuple[list[str], str]:
    return [*_audit_argv(_audit_set(tmp), "train", tmp), "--real-data", str(tmp / "nowhere")], "--real-data"


# --- damaged built folders (audit, stats, train --pretrain) ----------------------------------------------------


def _labelled_set(tmp: Path, name: str, emotions: list[int], splits: tuple[str, ...] = ("train",)) -> Path:
    """A built-folder layout whose ``emotions`` column holds ``emotions`` as written, out-of-range ids included.

    ``datasets`` refuses to write an out-of-range id, so the file is written valid and its column replaced with
    pyarrow, keeping the ClassLabel metadata: what a hand-edited or foreign parquet file looks like.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from erc_synth.dataset_scripts.core.registry import get_benchmark
    from erc_synth.dataset_scripts.schema import dialogues_dataset

    folder = tmp / name
    (folder / "data" / "dialogues").mkdir(parents=True)
    rows = [{"dialogue_id": "d0", "speakers": ["A"] * len(emotions), "utterances": ["Hi."] * len(emotions),
             "emotions": [0] * len(emotions)}]
    for split in splits:
        path = folder / "data" / "dialogues" / f"{split}-00000-of-00001.parquet"
        dialogues_dataset(get_benchmark("meld"), rows).to_parquet(str(path))
        table = pq.read_table(path)
        column = table.schema.get_field_index("emotions")
        field = table.schema.field(column)
        table = table.set_column(column, field, pa.array([emotions], field.type))
        pq.write_table(table, path)
    return folder


def _truncated_set(tmp: Path) -> Path:
    folder = _audit_set(tmp)
    path = folder / "data" / "dialogues" / "test-00000-of-00001.parquet"
    path.write_bytes(path.read_bytes()[:100])
    return folder


def _garbage_set(tmp: Path) -> Path:
    folder = _audit_set(tmp)
    (folder / "data" / "dialogues" / "test-00000-of-00001.parquet").write_bytes(b"PAR1 not really a parquet file")
    return folder


@probe("audit-truncated-parquet", slow=True)
def _audit_truncated_parquet(tmp: Path) -> tuple[list[str], str]:
    return _audit_argv(_truncated_set(tmp), "train", tmp), "test-00000-of-00001.parquet: not a readable parquet file"


@probe("audit-garbage-parquet", slow=True)
def _audit_garbage_parquet(tmp: Path) -> tuple[list[str], str]:
    return _audit_argv(_garbage_set(tmp), "train", tmp), "test-00000-of-00001.parquet: not a readable parquet file"


@probe("stats-truncated-parquet", slow=True)
def _stats_truncated_parquet(tmp: Path) -> tuple[list[str], str]:
    return ["stats", str(_truncated_set(tmp))], "test-00000-of-00001.parquet: not a readable parquet file"


@probe("audit-label-id-above-the-classlabel", slow=True)
def _audit_label_id_above(tmp: Path) -> tuple[list[str], str]:
    folder = _labelled_set(tmp, "set", [0, 99, 1], splits=("test",))
    return (_audit_argv(folder, "train", tmp),
            "test-00000-of-00001.parquet: label id outside the ClassLabel's 7 names (ids 0 to 6, or -1 for no "
            "label) (field 'emotions', value 99)")


@probe("audit-negative-label-id", slow=True)
def _audit_negative_label_id(tmp: Path) -> tuple[list[str], str]:
    folder = _labelled_set(tmp, "set", [0, -5], splits=("test",))
    return _audit_argv(folder, "train", tmp), "(field 'emotions', value -5)"


def _pretrain_argv(tmp: Path, synthetic: Path) -> list[str]:
    real = _labelled_set(tmp, "real", [0, 1, 2], splits=("train", "validation", "test"))
    (tmp / "encoder").mkdir()
    return ["train", "--arch", "compm", "--encoder", str(tmp / "encoder"), "--benchmark", "meld", "--real-data",
            str(real), "--pretrain", str(synthetic), "--out", str(tmp / "out")]


@probe("train-pretrain-truncated-parquet", slow=True)
def _train_pretrain_truncated_parquet(tmp: Path) -> tuple[list[str], str]:
    return _pretrain_argv(tmp, _truncated_set(tmp)), "test-00000-of-00001.parquet: not a readable parquet file"


@probe("train-pretrain-label-id-above-the-classlabel", slow=True)
def _train_pretrain_label_id_above(tmp: Path) -> tuple[list[str], str]:
    synthetic = _labelled_set(tmp, "synthetic", [3, 99], splits=("train", "validation"))
    return _pretrain_argv(tmp, synthetic), "train-00000-of-00001.parquet: label id outside the ClassLabel's 7"


# --- classifiers, experiment and tables ------------------------------------------------------------------------


def _train_argv(tmp: Path, *extra: str, real: Path | None = None) -> list[str]:
    (tmp / "encoder").mkdir(exist_ok=True)
    return ["train", "--arch", "compm", "--encoder", str(tmp / "encoder"), "--benchmark", "meld",
            "--real-data", str(real or tmp), "--out", str(tmp / "out"), *extra]


@probe("train-option-typo", slow=True)
def _train_option_typo(tmp: Path) -> tuple[list[str], str]:
    return _train_argv(tmp, "--option", "max_memory_utterance=4"), "did you mean 'max_memory_utterances'"


@probe("train-option-malformed-yaml", slow=True)
def _train_option_malformed_yaml(tmp: Path) -> tuple[list[str], str]:
    return _train_argv(tmp, "--option", "context=["), "--option context=[: not valid YAML"


@probe("train-option-yaml-alias", slow=True)
def _train_option_yaml_alias(tmp: Path) -> tuple[list[str], str]:
    return _train_argv(tmp, "--option", "context=&a [*a]"), "--option context=&a [*a]:1: YAML anchors and aliases"


@probe("train-encoder-missing-folder", slow=True)
def _train_encoder_missing(tmp: Path) -> tuple[list[str], str]:
    argv = _train_argv(tmp)
    argv[argv.index("--encoder") + 1] = str(tmp / "no-encoder")
    return argv, f"--encoder {tmp / 'no-encoder'}: no such folder"


@probe("train-real-data-of-another-benchmark", slow=True)
def _train_real_data_other_benchmark(tmp: Path) -> tuple[list[str], str]:
    (tmp / "emorynlp").mkdir()
    (tmp / "emorynlp" / "EMORY_train.txt").write_text("")
    return _train_argv(tmp, real=tmp / "emorynlp"), "holds emorynlp files, not meld's"


@probe("train-setting-out-of-range", slow=True)
def _train_setting_out_of_range(tmp: Path) -> tuple[list[str], str]:
    return _train_argv(tmp, "--learning-rate", "-1"), "--learning-rate must be in 0 < value <= 10.0, got -1.0"


@probe("train-push-to-hub-invalid-repo-id", slow=True)
def _train_push_to_hub_invalid_repo_id(tmp: Path) -> tuple[list[str], str]:
    return _train_argv(tmp, "--push-to-hub", "org/bad--name"), "--push-to-hub 'org/bad--name': not a Hub repo id"


@probe("train-push-to-hub-without-a-token", slow=True)
def _train_push_to_hub_without_a_token(tmp: Path) -> tuple:
    (tmp / "hf-home").mkdir()
    return (_train_argv(tmp, "--push-to-hub", "org/erc-model"), "--push-to-hub org/erc-model: no Hub token",
            {"HF_TOKEN": "", "HF_HOME": str(tmp / "hf-home"), "HF_HUB_OFFLINE": "0"})


@probe("train-push-to-hub-where-no-hub-answers", slow=True)
def _train_push_to_hub_where_no_hub_answers(tmp: Path) -> tuple:
    return (_train_argv(tmp, "--push-to-hub", "org/erc-model"), "cannot reach the Hub at http://127.0.0.1:9",
            {"HF_TOKEN": "hf_test", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"})


def _experiment_config(tmp: Path, **changes: object) -> Path:
    import yaml

    config = {"encoder": str(tmp), "architectures": ["compm"], "regimes": ["org"], "seeds": [0],
              "benchmarks": {"meld": {"real_data": str(tmp)}}, **changes}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@probe("experiment-option-typo", slow=True)
def _experiment_option_typo(tmp: Path) -> tuple[list[str], str]:
    path = _experiment_config(tmp, options={"compm": {"max_memory_utterance": 4}})
    return ["experiment", str(path)], "options.compm: unknown compm option 'max_memory_utterance'"


@probe("experiment-training-setting-typo", slow=True)
def _experiment_training_typo(tmp: Path) -> tuple[list[str], str]:
    path = _experiment_config(tmp, training={"learnig_rate": 1e-5})
    return ["experiment", str(path)], ("unknown key 'training.learnig_rate'; did you mean "
                                     "'training.learning_rate'?")


@probe("experiment-encoder-missing-folder")
def _experiment_encoder_missing(tmp: Path) -> tuple[list[str], str]:
    path = _experiment_config(tmp, encoder=str(tmp / "no-encoder"))
    return ["experiment", str(path)], f"encoder: {tmp / 'no-encoder'}: no such folder"


@probe("experiment-unknown-friedman-design", slow=True)
def _experiment_unknown_design(tmp: Path) -> tuple[list[str], str]:
    return ["experiment", str(_experiment_config(tmp, friedman_design="pooling"))], "friedman_design: unknown"


_LONG_HEADER = "architecture,regime,benchmark,seed,test_set,weighted_f1\n"


@probe("tables-missing-column")
def _tables_missing_column(tmp: Path) -> tuple[list[str], str]:
    (tmp / "long.csv").write_text("architecture,regime,benchmark,seed,test_set\ncompm,org,meld,0,real\n")
    return ["tables", str(tmp / "long.csv"), "--out", str(tmp / "out")], "long.csv:1: missing column(s) weighted_f1"


@probe("tables-non-numeric-score")
def _tables_non_numeric(tmp: Path) -> tuple[list[str], str]:
    (tmp / "long.csv").write_text(_LONG_HEADER + "compm,org,meld,0,real,0.5\ncompm,nat,meld,0,real,high\n")
    return ["tables", str(tmp / "long.csv"), "--out", str(tmp / "out")], "long.csv:3: not a number (field 'weighted_f1'"


@probe("tables-missing-pooled-cell", slow=True)
def _tables_missing_cell(tmp: Path) -> tuple[list[str], str]:
    rows = ["compm,org,meld,0,real,0.5", "compm,nat,meld,0,real,0.6", "compm,org,meld,0,synthetic_natural,0.4"]
    (tmp / "long.csv").write_text(_LONG_HEADER + "\n".join(rows) + "\n")
    return ["tables", str(tmp / "long.csv"), "--out", str(tmp / "out")], "meld/synthetic_natural/compm-nat"


@probe("tables-out-is-a-file")
def _tables_out_is_a_file(tmp: Path) -> tuple[list[str], str]:
    (tmp / "long.csv").write_text(_LONG_HEADER + "compm,org,meld,0,real,0.5\n")
    (tmp / "out").write_text("")
    return ["tables", str(tmp / "long.csv"), "--out", str(tmp / "out")], f"--out {tmp / 'out'}: is a file"


def _grid_config(tmp: Path, name: str = "grid.yaml", seeds: tuple[int, ...] = (0,)) -> Path:
    path = tmp / name
    path.write_text(f"encoder: {tmp}\narchitectures: [emoberta]\nregimes: [org]\nseeds: {list(seeds)}\n"
                    f"benchmarks: {{meld: {{real_data: {tmp}}}}}\n")
    return path


@probe("experiment-zero-workers", slow=True)
def _experiment_zero_workers(tmp: Path) -> tuple[list[str], str]:
    return ["experiment", str(_grid_config(tmp)), "--out", str(tmp / "run"), "--workers", "0"], \
        "--workers must be in 1 <= value <= 1024, got 0"


@probe("experiment-ray-address-where-nothing-listens", slow=True)
def _experiment_ray_address_where_nothing_listens(tmp: Path) -> tuple[list[str], str]:
    return ["experiment", str(_grid_config(tmp)), "--out", str(tmp / "run"), "--ray-address", "127.0.0.1:1"], \
        "--ray-address 127.0.0.1:1: no Ray cluster answers there"


@probe("experiment-ray-address-without-port", slow=True)
def _experiment_ray_address_without_port(tmp: Path) -> tuple[list[str], str]:
    return ["experiment", str(_grid_config(tmp)), "--out", str(tmp / "run"), "--ray-address", "headnode"], \
        "--ray-address headnode: expected auto or HOST:PORT"


@probe("experiment-removed-claim-expiry-flag")
def _experiment_removed_claim_expiry_flag(tmp: Path) -> tuple[list[str], str]:
    return ["experiment", str(_grid_config(tmp)), "--out", str(tmp / "run"), "--claim-expiry", "300"], \
        "--claim-expiry was removed: the grid runs on Ray now; Ray notices a dead worker"


@probe("experiment-removed-worker-flag")
def _experiment_removed_worker_flag(tmp: Path) -> tuple[list[str], str]:
    return ["experiment", str(_grid_config(tmp)), "--out", str(tmp / "run"), "--worker"], \
        "--worker was removed: the grid runs on Ray now; start the grid once"


@probe("experiment-resources-unknown-key")
def _experiment_resources_unknown_key(tmp: Path) -> tuple[list[str], str]:
    path = _grid_config(tmp)
    path.write_text(path.read_text() + "resources: {gpus: 1}\n")
    return ["experiment", str(path), "--out", str(tmp / "run")], \
        "unknown key 'resources.gpus'; did you mean 'resources.gpu'?"


@probe("experiment-on-another-configs-folder", slow=True)
def _experiment_on_another_configs_folder(tmp: Path) -> tuple[list[str], str]:
    from erc_synth.classifiers.experiment import Experiment, ExperimentConfig

    Experiment(ExperimentConfig.load(_grid_config(tmp)), tmp / "run").check_grid_record()  # the first run's
    other = _grid_config(tmp, "other.yaml", seeds=(0, 1))
    return ["experiment", str(other), "--out", str(tmp / "run")], "was started with other settings"


# --- human review (the server-side faults are probed against a real server in test_review.py) ------------------


def _review_argv(action: str, *extra: str) -> list[str]:
    from helpers.servers.process import free_port

    return ["review", action, "--benchmark", "meld", "--url", f"http://127.0.0.1:{free_port()}", "--project",
            "p", "--token", "t", *extra]


@probe("review-export-server-unreachable")
def _review_unreachable(tmp: Path) -> tuple[list[str], str]:
    return _review_argv("export", str(tmp)), "no Label Studio server answers there"


@probe("review-export-dataset-and-real-data")
def _review_two_sources(tmp: Path) -> tuple[list[str], str]:
    return _review_argv("export", str(tmp), "--real-data", str(tmp)), "give either DATASET or --real-data DIR"


@probe("review-export-negative-seed")
def _review_export_negative_seed(tmp: Path) -> tuple[list[str], str]:
    return _review_argv("export", str(tmp), "--seed", "-1"), "--seed must be in 0 <= value <= 4294967295, got -1"


@probe("review-import-seed-above-numpy")
def _review_import_seed_too_large(tmp: Path) -> tuple[list[str], str]:
    return _review_argv("import", str(tmp), "--out", str(tmp / "out"), "--seed", str(2**32)), "--seed must be in"


@probe("review-import-ceiling-not-a-real-review")
def _review_bad_ceiling(tmp: Path) -> tuple[list[str], str]:
    (tmp / "review.json").write_text('{"agreement": {"human_vs_synthetic": {}}}')
    return (_review_argv("import", str(tmp), "--out", str(tmp / "out"), "--ceiling", str(tmp / "review.json")),
            "not the review.json of a real split")


# --- metrics ---------------------------------------------------------------------------------------------------


@probe("friedman-non-numeric-score")
def _friedman_non_numeric(tmp: Path) -> tuple[list[str], str]:
    (tmp / "scores.csv").write_text("test_set,base,synth\nmeld,0.6,0.7\nemorynlp,0.3,O.4\n")
    return ["friedman", str(tmp / "scores.csv")], "scores.csv:3: score is not a finite number (field 'synth'"


@probe("friedman-unknown-system-in-compare")
def _friedman_unknown_compare(tmp: Path) -> tuple[list[str], str]:
    (tmp / "scores.csv").write_text("test_set,base,synth\nmeld,0.6,0.7\nemorynlp,0.3,0.4\n")
    return ["friedman", str(tmp / "scores.csv"), "--compare", "synth:bert"], "unknown system name(s) ['bert']"



@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=[pytest.mark.slow] if name in SLOW_PROBES else []) for name in sorted(PROBES)]
)
def test_user_error_is_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    argv, fragment, *overrides = PROBES[name](tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", **(overrides[0] if overrides else {})}
    done = subprocess.run(
        [sys.executable, "-m", "erc_synth.cli", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert fragment in lines[0]


# --- a reader that stops early (`erc-synth inspect RUN_DIR | head -1`) -------------------------------------------


def _inspect_run(tmp: Path) -> list[str]:
    from erc_synth.dataset_scripts.run_store import RunStore

    store = RunStore.create_or_open(tmp / "run", {"benchmark": "meld", "mode": "natural", "num_dialogues": 2})
    store.append([{"index": 0, "attempt": 0, "seed": 1, "status": "rejected", "reason": "no_lines"}])
    store.close()
    return ["inspect", str(tmp / "run")]


@pytest.mark.parametrize(("argv", "status"), [
    # argparse itself drops a help text it cannot write (its _print_message ignores OSError) and exits 0
    pytest.param(lambda tmp: ["--help"], 0, id="help"),
    pytest.param(lambda tmp: ["benchmarks"], 1, id="benchmarks"),
    pytest.param(lambda tmp: ["benchmarks", "--format", "json"], 1, id="benchmarks-json"),
    pytest.param(_inspect_run, 1, id="inspect"),
])
def test_closed_stdout_pipe_is_quiet(argv: Callable[[Path], list[str]], status: int, tmp_path: Path) -> None:
    """stdout is a pipe whose reader is already gone, so the first write fails for certain (no race with head)."""
    script = Path(sys.executable).with_name("erc-synth")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([str(script), *argv(tmp_path)], stdout=write_end, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == status
