"""The experiment: tables against the metric on a known matrix; a smoke-config run interrupted and resumed in this
process (the Ray engine has its own tests in tests/test_workers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from datasets import DatasetDict
from helpers.experiment_configs import smoke_ci_config
from helpers.tiny_encoders import TOY_WORDS, build_encoder, toy_dialogues, write_built_folder

from erc_synth.classifiers.experiment import Experiment, ExperimentConfig
from erc_synth.classifiers.tables import extended_table, main_table, main_table_markdown
from erc_synth.classifiers.workers import run_in_process
from erc_synth.cli import main
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.evaluate_metrics.erc_metrics import exact_rank_sum_pvalue, friedman_test

REPO = Path(__file__).resolve().parents[1]
MELD = get_benchmark("meld")
# Within every block: emoberta-nat > emoberta-bal > emoberta-org > compm-nat > compm-bal > compm-org.
ORDER = ["emoberta-nat", "emoberta-bal", "emoberta-org", "compm-nat", "compm-bal", "compm-org"]


def known_long() -> pd.DataFrame:
    rows = []
    for test_set, offset in (("real", 0.0), ("synthetic_natural", 0.1)):
        for seed in (0, 1):
            for position, system in enumerate(ORDER):
                architecture, regime = system.split("-")
                rows.append({"architecture": architecture, "regime": regime, "benchmark": "meld", "seed": seed,
                             "test_set": test_set, "weighted_f1": 0.6 - 0.05 * position + offset + 0.01 * seed})
    return pd.DataFrame(rows)


def test_extended_table_agrees_with_the_metric_on_a_known_matrix():
    table, result = extended_table(known_long(), "meld", ["emoberta", "compm"], ["org", "nat", "bal"])
    table = table.set_index("system")
    # 4 blocks (2 test sets x 2 seeds), 6 systems, the same order everywhere: rank sums 4, 8, ..., 24.
    assert result["num_blocks"] == 4 and result["num_systems"] == 6
    assert [table.loc[s, "rank_sum"] for s in ORDER] == [4, 8, 12, 16, 20, 24]
    assert [table.loc[s, "rank_sum_real"] for s in ORDER] == [2, 4, 6, 8, 10, 12]
    # Exactly the four pre-trained-vs-org comparisons, Bonferroni over four.
    assert result["num_comparisons"] == 4
    assert table.loc["emoberta-nat", "vs_org_rank_sum_diff"] == 4 - 12
    assert table.loc["compm-bal", "vs_org_rank_sum_diff"] == 20 - 24
    p = exact_rank_sum_pvalue(8, 6, 4)
    assert table.loc["emoberta-nat", "p_value"] == pytest.approx(p)
    assert table.loc["emoberta-nat", "p_value_bonferroni"] == pytest.approx(min(1.0, 4 * p))
    assert pd.isna(table.loc["emoberta-org", "p_value"])
    # The same numbers straight from the metric's friedman_test.
    matrix = [[0.6 - 0.05 * i + offset + 0.01 * seed for i in range(6)]
              for offset in (0.0, 0.1) for seed in (0, 1)]
    systems = ["emoberta-org", "emoberta-nat", "emoberta-bal", "compm-org", "compm-nat", "compm-bal"]
    columns = [ORDER.index(s) for s in systems]
    direct = friedman_test([[row[c] for c in columns] for row in matrix], systems,
                           comparisons=[("emoberta-nat", "emoberta-org"), ("emoberta-bal", "emoberta-org"),
                                        ("compm-nat", "compm-org"), ("compm-bal", "compm-org")])
    for pair in direct["pairwise"]:
        assert table.loc[pair["system_a"], "p_value_bonferroni"] == pytest.approx(pair["p_value_corrected"])
        assert table.loc[pair["system_a"], "vs_org_rank_sum_diff"] == pair["rank_sum_diff"]


def test_main_table_mean_std_and_best():
    table = main_table(known_long(), ["emoberta", "compm"], ["org", "nat", "bal"])
    row = table[(table["regime"] == "nat") & (table["architecture"] == "emoberta")].iloc[0]
    assert row["mean"] == pytest.approx(60.5) and row["std"] == pytest.approx(0.7071, abs=1e-3)
    assert row["seeds"] == 2 and row["best"]
    assert table["best"].sum() == 1
    markdown = main_table_markdown(table)
    assert markdown.splitlines()[0] == "| benchmark | regime | emoberta | compm |"
    assert markdown.splitlines()[2:] == ["| meld | org | 50.50 ± 0.71 | 35.50 ± 0.71 |",
                                         "| meld | nat | **60.50 ± 0.71** | 45.50 ± 0.71 |",
                                         "| meld | bal | 55.50 ± 0.71 | 40.50 ± 0.71 |"]


@pytest.fixture(scope="module")
def smoke_config(tmp_path_factory) -> Path:
    """classifiers/configs/smoke.yaml made CI-sized (one seed, MELD only); the regimes gain ``syn`` and the tables
    use the study's pooled design."""
    return smoke_ci_config(tmp_path_factory.mktemp("smoke"), regimes=["org", "nat", "bal", "syn"], seeds=[0],
                           friedman_design="pooled")


def test_smoke_experiment_is_interrupted_and_resumed(smoke_config, tmp_path, monkeypatch, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _interrupt_and_resume(smoke_config, tmp_path / "run", monkeypatch, capsys)
    finally:
        torch.set_num_threads(threads)


def _interrupt_and_resume(config_path: Path, out: Path, monkeypatch, capsys) -> None:
    config = ExperimentConfig.load(config_path)
    cells = list(config.cells())
    assert len(cells) == 12  # 3 architectures x 4 regimes x 1 benchmark x 1 seed

    original = Experiment.run_cell
    calls: list[str] = []

    def crash_on_third(self, cell):
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the grid
        calls.append(cell.key)
        return original(self, cell)

    monkeypatch.setattr(Experiment, "run_cell", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_in_process(Experiment(config, out), progress=False)
    finished = sorted(p for p in (out / "cells").rglob("*.json"))
    assert len(finished) == 2
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in finished}

    monkeypatch.setattr(Experiment, "run_cell", original)
    capsys.readouterr()
    run_in_process(Experiment(config, out), progress=False)
    log = capsys.readouterr().out
    assert main(["experiment", str(config_path), "--out", str(out), "--tables-only", "--compare-paper"]) == 0
    assert log.count("done earlier, skipped") == 2
    assert all((p.stat().st_mtime_ns, p.read_bytes()) == before[p] for p in finished)  # not rerun
    assert len(list((out / "cells").rglob("*.json"))) == 12
    assert not list(out.rglob(".*.tmp"))

    long = pd.read_csv(out / "results_long.csv")
    assert list(long.columns) == ["architecture", "regime", "benchmark", "seed", "test_set", "weighted_f1"]
    assert len(long) == 12 * 3  # every cell on the real test split and both synthetic test splits
    assert set(long["test_set"]) == {"real", "synthetic_natural", "synthetic_balanced"}
    main_md = (out / "main_table.md").read_text()
    assert "| meld | org |" in main_md and "| meld | syn |" in main_md and "**" in main_md
    extended = pd.read_csv(out / "extended_table.csv")
    assert len(extended) == 12 and extended["rank_sum"].sum() == pytest.approx(3 * 78)  # 3 blocks of ranks 1..12
    compared = extended.dropna(subset=["p_value_bonferroni"])["system"].tolist()
    assert sorted(compared) == sorted(f"{a}-{r}" for a in ("emoberta", "compm", "todkat") for r in ("nat", "bal",
                                                                                                   "syn"))
    assert "| **rank sum** |" in (out / "extended_table.md").read_text()
    assert (out / "critical_difference_pooled.png").stat().st_size > 0
    comparison = (out / "paper_comparison.md").read_text()
    assert "| meld | syn | todkat |" in comparison and "| – | – |" in comparison  # the study has no syn cell
    assert comparison.count("\n| meld |") == 12
    syn = json.loads((out / "cells" / "meld" / "emoberta" / "syn" / "seed0.json").read_text())
    assert syn["validation"]["selected_on"] == "synthetic validation" and syn["data"]["pretrain"].endswith("natural")
    stored = json.loads(finished[0].read_text())
    assert set(stored["scores"]) == {"real", "synthetic_natural", "synthetic_balanced"}

    # A finished cell made with other settings is refused, not mixed into the tables.
    changed = yaml.safe_load(config_path.read_text())
    changed["training"]["learning_rate"] = 1.0
    other = config_path.with_name("changed.yaml")
    other.write_text(yaml.safe_dump(changed))
    with pytest.raises(ErcSynthError, match="other settings"):
        run_in_process(Experiment(ExperimentConfig.load(other), out), log=lambda _: None)


def test_config_errors_name_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"encoder": "x", "architectures": ["emoberta"], "seeds": [0],
                                    "regimes": ["nat"], "benchmarks": {"meld": {"real_data": "/nowhere"}}}))
    with pytest.raises(ErcSynthError, match=r"benchmarks\.meld\.synthetic: regime 'nat' needs a 'natural'"):
        ExperimentConfig.load(path)
    path.write_text(yaml.safe_dump({"encoder": "x", "architectures": ["emoberta"], "seeds": [0],
                                    "training": {"epoch": 1}, "benchmarks": {}}))
    with pytest.raises(ErcSynthError, match=r"unknown key 'training\.epoch'; did you mean 'training\.epochs'\?"):
        ExperimentConfig.load(path)
    base = {"encoder": "x", "architectures": ["compm"], "seeds": [0], "benchmarks": {}}
    for changes, message in (
        ({"options": {"compm": {"max_memory_utterance": 4}}},
         r"options\.compm: unknown compm option 'max_memory_utterance'; did you mean 'max_memory_utterances'\?"),
        ({"options": {"emoberta": {"max_length": 64}}}, r"options\.emoberta: not one of the config's architectures"),
        ({"training": {"warmup_ratio": 1.5}}, r"field 'training\.warmup_ratio' must be in \[0, 1\), got 1\.5"),
        ({"pretraining": {"batch_size": 0}}, r"field 'pretraining\.batch_size' must be in 1 <= value <= 65536, got 0"),
        ({"architecture_training": {"compm": {"learnig_rate": 1}}},
         r"unknown key 'architecture_training\.compm\.learnig_rate'; did you mean "
         r"'architecture_training\.compm\.learning_rate'\?"),
        ({"topic_pretraining": {"topic_dims": 4}}, r"unknown key 'topic_pretraining\.topic_dims'; did you mean "
                                                   r"'topic_pretraining\.topic_dim'\?"),
        ({"friedman_design": "pooling"}, r"friedman_design: unknown 'pooling'"),
        ({"friedman_desing": "pooled"}, r"unknown key 'friedman_desing'; did you mean 'friedman_design'"),
        ({"resources": {"gpus": 1}}, r"unknown key 'resources\.gpus'; did you mean 'resources\.gpu'\? "
                                      r"\(known here: cpu, gpu\)"),
        ({"resources": {"gpu": -1}}, r"field 'resources\.gpu' has value -1: Input should be greater "),
        ({"resources": {"cpu": "eight"}}, r"field 'resources\.cpu' has value 'eight': Input should be a valid integer"),
        ({"resources": 8}, r"field 'resources' has value 8: Input should be a valid dictionary"),
    ):
        path.write_text(yaml.safe_dump({**base, **changes}))
        with pytest.raises(ErcSynthError, match=message):
            ExperimentConfig.load(path)
    path.write_text("encoder: ${ERC_SYNTH_SURELY_UNSET}\narchitectures: [emoberta]\nseeds: [0]\nbenchmarks: {}\n")
    with pytest.raises(ErcSynthError, match="ERC_SYNTH_SURELY_UNSET is not set"):
        ExperimentConfig.load(path)


def test_shipped_configs_parse(monkeypatch, tmp_path):
    for name in ("ERC_SYNTH_REAL_DATA", "ERC_SYNTH_SMOKE_SYNTHETIC", "ERC_SYNTH_SYNTHETIC", "ERC_SYNTH_COMET",
                 "ERC_SYNTH_STUDY_SYNTHETIC"):
        monkeypatch.setenv(name, str(tmp_path))
    smoke = ExperimentConfig.load(REPO / "classifiers" / "configs" / "smoke.yaml")
    assert len(list(smoke.cells())) == 3 * 4 * 3 * 1 and smoke.encoder == "minilm"
    assert (smoke.resources.cpu, smoke.resources.gpu) == (1.0, None)  # one CPU; one GPU where the cluster has one
    assert smoke.benchmarks["iemocap"]["synthetic"]["balanced"] == f"{tmp_path}/iemocap-synth-balanced"
    paper = ExperimentConfig.load(REPO / "classifiers" / "configs" / "paper.yaml")
    assert len(list(paper.cells())) == 3 * 3 * 3 * 5 and paper.encoder == "roberta-large"
    compm_cell = next(c for c in paper.cells() if c.architecture == "compm")
    assert paper.settings(compm_cell).learning_rate == 1e-6 and paper.settings(compm_cell).epochs == 10
    emoberta_cell = next(c for c in paper.cells() if c.architecture == "emoberta")
    assert paper.settings(emoberta_cell).learning_rate == 3e-6 and paper.settings(emoberta_cell).batch_size == 4
    # The study's method: the pooled Table IV design, TODKAT with COMET knowledge and topic pre-training.
    assert paper.friedman_design == "pooled" and smoke.friedman_design == "per_benchmark"
    assert paper.options["todkat"]["knowledge"] == f"comet:{tmp_path}"
    assert paper.topic_pretraining is not None and paper.topic_pretraining.epochs == 3
    # The CPU study: EmoBERTa-style on MiniLM, all four regimes, full splits (no limits), the pooled design.
    study = ExperimentConfig.load(REPO / "classifiers" / "configs" / "cpu-study.yaml")
    assert len(list(study.cells())) == 1 * 4 * 3 * 1 and study.encoder == "minilm"
    assert study.friedman_design == "pooled" and {c.regime for c in study.cells()} == {"org", "nat", "bal", "syn"}
    assert all(not study.benchmarks[b].get("limit") for b in ("meld", "emorynlp", "iemocap"))


def tiny_comet(folder: Path) -> str:
    """A 1-layer random BART with a word-level tokenizer: a COMET-style seq2seq model by path."""
    from helpers.tiny_encoders import build_tokenizer
    from transformers import BartConfig, BartForConditionalGeneration

    tokenizer = build_tokenizer((*TOY_WORDS, "xintent", "xreact", "oreact", "[gen]"), style="roberta")
    config = BartConfig(
        vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
        forced_bos_token_id=None, forced_eos_token_id=None,
    )
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_todkat_stages_are_cached_and_shared_by_two_cells(tmp_path, monkeypatch, capsys):
    """Topic pre-training runs once per benchmark and the second cell reuses it; the knowledge cache answers the
    second cell without a COMET call."""
    from erc_synth.classifiers.todkat import knowledge, training

    encoder = build_encoder(tmp_path / "encoder", TOY_WORDS, "roberta")
    real = write_built_folder(DatasetDict(train=toy_dialogues(MELD, 8, 1), validation=toy_dialogues(MELD, 3, 2),
                                          test=toy_dialogues(MELD, 3, 3)), tmp_path / "real")
    config = {"encoder": str(encoder), "architectures": ["todkat"], "regimes": ["org"], "seeds": [0, 1],
              "options": {"todkat": {"max_length": 16, "knowledge": f"comet:{tiny_comet(tmp_path / 'comet')}",
                                     "retriever": str(encoder), "num_candidates": 2, "max_new_tokens": 3}},
              "training": {"epochs": 1, "batch_size": 4, "logging_steps": 50, "early_stopping_patience": None},
              "topic_pretraining": {"max_steps": 2, "batch_size": 8, "topic_dim": 4, "max_length": 16},
              "benchmarks": {"meld": {"real_data": str(real)}}}
    path = tmp_path / "todkat.yaml"
    path.write_text(yaml.safe_dump(config))
    experiment = Experiment(ExperimentConfig.load(path), tmp_path / "run")

    topic_runs, comet_calls = [], []
    original_topics, original_generate = training.train_topics, knowledge.CometProvider._generate
    monkeypatch.setattr(training, "train_topics", lambda *a, **k: topic_runs.append(1) or original_topics(*a, **k))
    monkeypatch.setattr(knowledge.CometProvider, "_generate",
                        lambda self, *a: comet_calls.append(1) or original_generate(self, *a))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first, second = experiment.config.cells()
        experiment.run_cell(first)
        stage = tmp_path / "run" / "stages" / "topics" / "meld" / "stage.json"
        stamp, calls_after_first = stage.stat().st_mtime_ns, len(comet_calls)
        assert topic_runs == [1] and calls_after_first > 0
        experiment.run_cell(second)
    finally:
        torch.set_num_threads(threads)
    assert topic_runs == [1] and stage.stat().st_mtime_ns == stamp  # trained once, reused by the second cell
    assert len(comet_calls) == calls_after_first  # every relation of every utterance came from the cache
    assert "topic pre-training meld: done earlier, reused" in capsys.readouterr().out
    assert (tmp_path / "run" / "stages" / "knowledge" / "comet-cache.sqlite").is_file()
    assert json.loads(stage.read_text())["utterances"] == sum(len(u) for u in toy_dialogues(MELD, 8, 1)["utterances"])
    # A stage made with other settings is refused rather than silently reused.
    config["topic_pretraining"]["topic_dim"] = 5
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ErcSynthError, match="topic pre-training there was made with other settings"):
        Experiment(ExperimentConfig.load(path), tmp_path / "run").run_cell(first)
