"""Dataset cards, the label distribution plot, JS divergence and the Hub allow-lists, on real builds."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from helpers.builder_support import TEMPLATE, make_run_dir
from huggingface_hub import DatasetCard
from PIL import Image

from erc_synth.cli import main as erc_synth
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.hub_cards import build_folder, js_divergence, label_distribution_figure, save_label_distribution_plot
from erc_synth.hub_cards import folder as folder_module
from erc_synth.hub_cards.allowlists import size_category, validate_card_metadata
from erc_synth.hub_cards.card import CardInputs, render_card
from erc_synth.hub_cards.divergence import counts_vector
from erc_synth.hub_cards.folder import BUILD_REPORT_FILE, build_all, read_build_report

#: An audit summary shaped like ``classifiers.audit``'s audit.json, with values chosen to be recognisable.
AUDIT_SUMMARY = {
    "num_utterances": 212, "agreement": 0.4151, "kappa": 0.2875, "chance_agreement": 0.1802,
    "per_label": {"neutral": {"precision": 0.5, "recall": 0.6, "f1": 0.545, "support": 80}},
    "judge": {"id": "train", "kind": "train", "benchmark": "meld", "weighted_f1": 0.4713},
    "position_label_spearman": 0.6419, "position_label_spearman_real": 0.0214,
    "monotonic_share": 0.5625, "monotonic_share_real": 0.0071,
    "suspect_utterances": {"count": 37, "top": []},
}

SECTIONS = ("## Summary", "## How to load", "## Schema", "## Generation setup", "## Quality gates",
            "## Rejected generations", "## Statistics", "## Label distribution",
            "## Comparison with the real benchmark", "## Label fidelity", "## Differences from the reference study",
            "## Intended uses and limitations", "## Licence", "## Citation")


@pytest.mark.parametrize(("n", "bucket"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (12_345, "10K<n<100K"),
                                           (10**13, "n>1T")])
def test_size_category_buckets(n, bucket):
    assert size_category(n) == bucket


def test_card_metadata_outside_the_hub_lists_is_refused_with_every_problem_named():
    validate_card_metadata({"license": "cc-by-4.0", "task_categories": ["text-classification"],
                            "task_ids": ["multi-class-classification"], "size_categories": ["n<1K"],
                            "source_datasets": ["original"], "language": ["en"]})
    with pytest.raises(ErcSynthError) as err:
        validate_card_metadata({"license": "cc-by-5.0", "size_categories": ["<1K"], "task_ids": ["erc"],
                                "task_categories": "emotion", "source_datasets": ["MELD"], "language": ["English"],
                                "annotations_creators": ["llm"], "multilinguality": ["mono"]})
    message = str(err.value)
    for bad in ("'cc-by-5.0'", "'<1K'", "'erc'", "'emotion'", "'MELD'", "'English'", "'llm'", "'mono'"):
        assert bad in message


def test_js_divergence_bounds_symmetry_and_label_checks():
    assert js_divergence([5, 5, 0], [1, 1, 0]) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    p, q = [10, 3, 1], [2, 2, 9]
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p))
    assert 0 < js_divergence(p, q) < 1
    labels = get_benchmark("iemocap").labels
    assert list(counts_vector({"sad": 2}, labels)) == [0, 0, 2, 0, 0, 0]
    with pytest.raises(ValueError, match="unknown labels"):
        counts_vector({"joy": 1}, labels)


def test_plot_has_a_log_panel_per_benchmark_and_a_bar_per_label_and_series(tmp_path):
    meld = get_benchmark("meld").labels
    data = {"meld": {"real": [4710, 1743, 1205, 1109, 683, 271, 268], "natural": [50, 20, 9, 8, 4, 1, 0],
                     "balanced": dict.fromkeys(meld, 30)},
            "iemocap": {"natural": [10, 9, 8, 7, 6, 5]}}
    fig = label_distribution_figure(data)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["MELD", "IEMOCAP (6-way)"]
    assert all(ax.get_xscale() == "log" for ax in axes)
    assert [t.get_text() for t in axes[0].get_yticklabels()] == list(meld)
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["natural", "balanced", "real"]
    by_series = {c.get_label(): [bar.get_width() for bar in c] for c in axes[0].containers}
    assert by_series["real"] == data["meld"]["real"]
    assert by_series["balanced"] == [30] * 7
    assert len(axes[1].containers) == 1
    first = save_label_distribution_plot(data, tmp_path / "a.png")
    second = save_label_distribution_plot(data, tmp_path / "b.png")
    assert first.read_bytes() == second.read_bytes()
    with Image.open(first) as image:
        assert image.format == "PNG" and image.width > image.height
    with pytest.raises(ValueError):
        label_distribution_figure({})


def test_card_holds_setup_gates_rejections_and_statistics_and_rebuilds_identically(tmp_path):
    run = make_run_dir(tmp_path / "run", "meld", "balanced", n=30)
    settings = json.loads((run / "manifest.json").read_text())["settings"]
    folders = [tmp_path / "a", tmp_path / "b"]
    reports = [build_folder(run, folder) for folder in folders]
    digests = [{p.relative_to(f).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in f.rglob("*") if p.is_file()} for f in folders]
    assert digests[0] == digests[1]
    assert {"README.md", "label_distribution.png", "data/dialogues/train-00000-of-00001.parquet"} <= set(digests[0])
    card = DatasetCard.load(folders[0] / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "cc-by-4.0" and data["size_categories"] == ["n<1K"]
    assert data["task_categories"] == ["text-classification"] and data["task_ids"] == ["multi-class-classification"]
    assert [c["config_name"] for c in data["configs"]] == ["dialogues", "utterances"]
    emotions = data["dataset_info"][0]["features"][3]
    assert emotions["list"]["class_label"]["names"] == {str(i): n for i, n in enumerate(get_benchmark("meld").labels)}
    text = card.text
    for section in SECTIONS:
        assert section in text, section
    assert TEMPLATE in text  # prompt template verbatim
    for key, value in settings["sampling"].items():
        assert f"| {key} | {json.dumps(value)} |" in text
    assert "| model revision (sha) | abc123def |" in text and "| backend | tgi |" in text
    assert "| json_parse_error | 2 |" in text and "| too_few_turns | 1 |" in text and "| unknown_label | 2 |" in text
    assert "| exact duplicates (normalised-text SHA-256) | on | 1 |" in text
    assert "Jaccard >= 0.8 | 1 |" in text and "no reference given" in text
    assert "over-represented" in text and "No real benchmark files were given" in text
    assert "![Label distribution, log scale](label_distribution.png)" in text
    stats = reports[0].statistics
    train_row = next(line for line in text.splitlines() if line.startswith("| train "))
    cells = [c.strip() for c in train_row.strip("|").split("|")]
    assert cells[:3] == ["train", str(stats["train"]["dialogues"]), str(stats["train"]["utterances"])]
    assert cells[-7:] == [str(stats["train"]["label_counts"][label]) for label in get_benchmark("meld").labels]
    assert sum(reports[0].label_counts.values()) == sum(s["utterances"] for s in stats.values())


def test_template_with_backticks_keeps_its_fence_and_natural_cards_say_so(tmp_path):
    run = make_run_dir(tmp_path / "run", "emorynlp", "natural", n=8, plant_duplicates=False)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["settings"]["mode"] == "natural"
    report = build_folder(run, tmp_path / "out", repo_id="someone/emory-natural", license="cc-by-sa-4.0",
                          extra_plot_series={"meld": {"natural": [1, 2, 3, 4, 5, 6, 7]}})
    text = (tmp_path / "out" / "README.md").read_text()
    assert 'load_dataset("someone/emory-natural")' in text and "license: cc-by-sa-4.0" in text
    assert "This is a **natural** set" in text and "over-represented" not in text
    assert report.divergences == {}
    with pytest.raises(ErcSynthError, match="not a value the Hub accepts"):
        build_folder(run, tmp_path / "bad", license="friends-only")


def test_cli_build_reports_splits_and_refuses_bad_input(tmp_path, capsys):
    run = make_run_dir(tmp_path / "run", "iemocap", "balanced", n=20, plant_duplicates=False)
    assert erc_synth(["build", str(run), "--out", str(tmp_path / "out"), "--ratios", "0.5,0.25,0.25"]) == 0
    out = capsys.readouterr().out
    assert "built iemocap-balanced" in out and "train 10, validation 5, test 5 dialogues" in out
    assert erc_synth(["build", str(run), "--out", str(tmp_path / "out2"), "--ratios", "0.5,0.6"]) == 2
    assert "ratios" in capsys.readouterr().err
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    assert erc_synth(["build", str(run), "--out", str(tmp_path / "foreign")]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert erc_synth(["build", str(run), "--out", str(tmp_path / "out3"), "--near-dup-threshold", "1.5"]) == 2
    assert "--near-dup-threshold must be a number in (0, 1]" in capsys.readouterr().err
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "mine"


@pytest.mark.needs_shared_data
def test_real_data_gives_decontamination_and_js_divergence(tmp_path, shared_data, capsys):
    from erc_synth.dataset_scripts.readers import load_reference

    real = load_reference("iemocap", shared_data)
    copied = real["test"][0]["utterances"][:6]
    run = make_run_dir(tmp_path / "run", "iemocap", "balanced", n=16, copy_text=copied)
    report = build_folder(run, tmp_path / "out", real_data_dir=shared_data)
    gates = report.build["gates"]
    assert gates["contaminated"] == 1
    assert [d["index"] for d in gates["dropped"] if d["gate"] == "contaminated"] == [4]
    labels = get_benchmark("iemocap").labels
    real_counts = np.zeros(len(labels))
    for emotions in real["train"]["emotions"]:  # the card compares with the real train split
        real_counts += np.bincount([e for e in emotions if e >= 0], minlength=len(labels))
    assert list(report.real_label_counts.values()) == list(real_counts)
    expected = js_divergence(counts_vector(report.label_counts, labels), real_counts)
    assert report.divergences["balanced"] == pytest.approx(expected, abs=1e-6)
    text = (tmp_path / "out" / "README.md").read_text()
    assert erc_synth(["build", str(run), "--out", str(tmp_path / "tolerant"), "--real-data", str(shared_data),
                      "--decontam-threshold", "0.5", "--decontam-ngram", "10"]) == 0
    assert "1 contaminated" in capsys.readouterr().out  # a verbatim copy shares all of its n-grams
    assert "word 10-grams" in (tmp_path / "tolerant" / "README.md").read_text()
    assert "share > 0.5 | 1 |" in (tmp_path / "tolerant" / "README.md").read_text()
    assert f"| balanced | {expected:.4f} |" in text
    assert "the IEMOCAP (6-way) (compm variant) test and train splits) | share > 0.0 | 1 |" in text
    assert "series: balanced, real" in text


def test_cli_registration_stays_import_light():
    """``erc-synth --help`` imports hub_cards.cli: it must not pull in matplotlib, datasets or huggingface_hub."""
    import subprocess
    import sys

    code = ("import sys, erc_synth.hub_cards, erc_synth.hub_cards.cli; "
            "print([m for m in ('matplotlib', 'datasets', 'huggingface_hub') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_plots_leave_the_callers_matplotlib_backend_and_pyplot_alone(tmp_path):
    """A library must not switch the backend of the notebook or application that imports it."""
    import os
    import subprocess
    import sys

    plot = {"meld": {"natural": [3, 2, 1, 1, 1, 1, 1]}}
    code = ("import sys, matplotlib; from erc_synth.hub_cards.plots import save_label_distribution_plot; "
            f"save_label_distribution_plot({plot!r}, {str(tmp_path / 'p.png')!r}); "
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "MPLBACKEND": "svg"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["svg", "False"]
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_label_fidelity_section_and_yaml_block_come_from_the_audit_summary(tmp_path):
    run = make_run_dir(tmp_path / "run", "meld", "natural", n=10, plant_duplicates=False)
    build_folder(run, tmp_path / "out")
    stored = read_build_report(tmp_path / "out")
    inputs = CardInputs.from_dict(stored["card"])
    assert str(render_card(inputs)) == (tmp_path / "out" / "README.md").read_text()  # the report re-renders it
    plain = (tmp_path / "out" / "README.md").read_text()
    assert "Labels in this set: policy **llm**" in plain and "No label audit was run" in plain
    assert "label_fidelity" not in DatasetCard.load(tmp_path / "out" / "README.md").data.to_dict()

    inputs.label_fidelity, inputs.label_policy = AUDIT_SUMMARY, "agree"
    inputs.confusion_matrix_file = "audit/confusion_matrix.png"
    card = DatasetCard(str(render_card(inputs)))
    block = card.data.to_dict()["label_fidelity"]
    assert block == {"label_policy": "agree", "judge": "train", "judge_weighted_f1": 0.4713, "num_utterances": 212,
                     "agreement": 0.4151, "kappa": 0.2875, "chance_agreement": 0.1802,
                     "position_label_spearman": 0.6419, "position_label_spearman_real": 0.0214,
                     "monotonic_share": 0.5625, "monotonic_share_real": 0.0071, "suspect_utterances": 37}
    text = card.text
    assert "Labels in this set: policy **agree**" in text and "unlabelled (-1, kept as context)" in text
    assert "| Cohen's kappa, LLM label vs judge label | 0.287 | |" in text
    assert "| agreement (chance agreement from the two marginals) | 0.415 (0.180) | |" in text
    assert "| Spearman's rho of label id vs turn index, mean over dialogues | 0.642 | 0.021 |" in text
    assert "| dialogues of 3+ turns whose labels strictly increase | 0.562 | 0.007 |" in text
    assert "judge `train` (weighted F1 0.471" in text and "37 utterances are" in text
    assert "](audit/confusion_matrix.png)" in text and "No label audit was run" not in text
    assert "labels are the LLM's where the audit judge agreed (-1 elsewhere), and were not checked" in text
    assert "labels were produced by the same LLM and were not checked by people." in plain
    inputs.label_policy = "judge"
    assert "labels were assigned by the audit judge (a classifier), not by the LLM that" in str(render_card(inputs))
    inputs.label_fidelity = {**AUDIT_SUMMARY, "judge": {**AUDIT_SUMMARY["judge"], "kind": "llm"}}
    assert ("labels were assigned by the audit judge (an LLM asked for each utterance's label in its dialogue), "
            "not by the LLM that") in " ".join(str(render_card(inputs)).split())


def test_card_cites_the_study_lists_differences_and_the_realised_target_share(tmp_path):
    run = make_run_dir(tmp_path / "run", "meld", "balanced", n=30)
    differences = ["TGI instead of text-generation-webui with LangChain", "counts chosen by the project"]
    build_folder(run, tmp_path / "out", differences=differences)
    text = (tmp_path / "out" / "README.md").read_text()
    section = text.split("## Differences from the reference study")[1].split("## ")[0]
    assert "arXiv:2508.05474" in section
    assert [line[2:] for line in section.splitlines() if line.startswith("- ")] == differences
    assert "@article{kaplan2025llmerc," in text.split("## Citation")[1]
    accepted = RunStore.open(run).accepted()
    hits = sum(r.target_emotion in r.emotions for r in accepted)
    assert hits < len(accepted) == 29  # the planted records miss their target now and then: the share is measured
    assert f"Target emotion realised: {hits} of the {len(accepted)} accepted" in text
    natural = make_run_dir(tmp_path / "natural", "meld", "natural", n=6, plant_duplicates=False)
    build_folder(natural, tmp_path / "nat")
    assert "Target emotion realised" not in (tmp_path / "nat" / "README.md").read_text()
    assert "The build was given no list of differences" in (tmp_path / "nat" / "README.md").read_text()


def test_label_policies_other_than_llm_need_an_audit_and_unknown_ones_are_refused(tmp_path):
    run = make_run_dir(tmp_path / "run", "meld", "natural", n=4, plant_duplicates=False)
    with pytest.raises(ErcSynthError, match=r"^label_policy: judge takes its labels from an audit: it needs audit set "
                                            r"to a judge$"):
        build_folder(run, tmp_path / "out", label_policy="judge")
    with pytest.raises(ErcSynthError, match=r"^label_policy: must be one of llm, judge, agree, got 'majority'$"):
        build_folder(run, tmp_path / "out", label_policy="majority", audit="train")
    assert not (tmp_path / "out").exists()  # refused before anything was built or written


def test_build_all_builds_each_run_once_and_writes_each_folder_once(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for benchmark in ("meld", "iemocap"):
        for mode in ("natural", "balanced"):
            make_run_dir(runs / f"{benchmark}-{mode}", benchmark, mode, n=8, plant_duplicates=False)
    calls = {"build": 0, "records": 0, "card": 0}
    real_build, real_records, real_card = folder_module.build, RunStore.records, folder_module.render_card

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(folder_module, "build", counted("build", real_build))
    monkeypatch.setattr(RunStore, "records", counted("records", real_records))
    monkeypatch.setattr(folder_module, "render_card", counted("card", real_card))
    result = build_all(runs, tmp_path / "built", repo_org="someone")
    assert calls == {"build": 4, "card": 4, "records": 4}
    assert set(result.series) == {"meld", "iemocap"}
    assert result.series["meld"]["natural"] == result.folders["meld-natural"].label_counts
    text = (tmp_path / "built" / "iemocap-synth-balanced" / "README.md").read_text()
    assert 'load_dataset("someone/iemocap-synth-balanced")' in text
    assert "series: natural, balanced" in text  # the figure's legend order
    files = read_build_report(tmp_path / "built" / "meld-synth-natural")["files"]
    assert files == result.folders["meld-natural"].files
    assert {"README.md", BUILD_REPORT_FILE, "label_distribution.png",
            "data/utterances/train-00000-of-00001.parquet"} <= set(files)


@pytest.mark.slow
@pytest.mark.needs_shared_data
def test_build_with_a_real_audit_applies_the_agree_policy_and_shows_it_on_the_card(tmp_path, shared_data):
    from erc_synth.classifiers.audit import JudgeSettings
    from erc_synth.dataset_scripts.builder import build
    from erc_synth.hub_cards.folder import own_series, prepare_run, write_folder
    from erc_synth.label_auditor import ClassifierAuditor

    run = make_run_dir(tmp_path / "run", "iemocap", "natural", n=12, plant_duplicates=False)
    tiny_judge = JudgeSettings(limit_train=8, limit_validation=4, limit_test=4, max_steps=4, batch_size=8)
    prepared = prepare_run(run, real_data_dir=shared_data, audit="train", label_policy="agree",
                           judge_settings=tiny_judge, audit_cache_dir=tmp_path / "judges",
                           auditor=ClassifierAuditor())
    llm = build(run, reference=prepared.real.reference).dialogues
    disagreements = 0
    for split, dataset in prepared.built.dialogues.items():
        for i, emotions in enumerate(dataset["emotions"]):
            judged, own = prepared.audit.judge_labels[split][i], llm[split][i]["emotions"]
            assert emotions == [e if e == j else -1 for e, j in zip(own, judged, strict=True)]
            disagreements += sum(e != j for e, j in zip(own, judged, strict=True))
    assert disagreements > 0  # a judge trained for four steps disagrees often: the policy had work to do
    report = write_folder(prepared, tmp_path / "out", own_series(prepared))
    assert {"audit/audit.json", "audit/audit.md", "audit/confusion_matrix.png"} <= set(report.files)
    assert report.files == read_build_report(tmp_path / "out")["files"]
    card = DatasetCard.load(tmp_path / "out" / "README.md")
    block = card.data.to_dict()["label_fidelity"]
    summary = json.loads((tmp_path / "out" / "audit" / "audit.json").read_text())
    assert block["label_policy"] == "agree" and block["kappa"] == summary["kappa"]
    assert block["num_utterances"] == summary["num_utterances"] == sum(len(e) for s in llm.values()
                                                                       for e in s["emotions"])
    assert "Labels in this set: policy **agree**" in card.text and "](audit/confusion_matrix.png)" in card.text
    unlabelled = sum(s["unlabelled"] for s in report.statistics.values())
    assert unlabelled == disagreements  # the card's statistics describe the labels the set carries


def test_card_states_per_parameter_what_the_backend_applied_not_what_was_requested(tmp_path):
    run = make_run_dir(tmp_path / "run", "meld", "natural", n=12)
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["settings"]["grammar"] = True
    manifest["settings"]["sampling"]["typical_p"] = 0.995
    applied = dict.fromkeys(manifest["settings"]["sampling"], True)
    applied["typical_p"] = False
    del applied["top_k"]  # a parameter the backend said nothing about
    manifest["provenance"]["applied"] = {"sampling": applied, "constraint": "regex via structured_outputs"}
    manifest_path.write_text(json.dumps(manifest))
    build_folder(run, tmp_path / "built")
    text = DatasetCard.load(tmp_path / "built" / "README.md").text
    typical_p = json.dumps(manifest["settings"]["sampling"]["typical_p"])
    assert f"| typical_p | {typical_p} | **no** (the backend does not support it; not in effect) |" in text
    assert f"| temperature | {json.dumps(manifest['settings']['sampling']['temperature'])} | yes |" in text
    assert f"| top_k | {json.dumps(manifest['settings']['sampling']['top_k'])} | not recorded |" in text
    assert "Constraint applied to decoding: regex via structured_outputs." in text
