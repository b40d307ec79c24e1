"""The data-quality report and the bad-line gate: known answers on real text, the card and summary, bad input.

Real components throughout: the offline MiniLM for the embeddings, scikit-learn for the two-sample test, the real
builder and gates. Tests on the real benchmark skip when its licensed copies are absent.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.builder_support import make_run_dir, settings_for

from erc_synth.classifiers.quality import from_columns, quality_report
from erc_synth.classifiers.quality import metrics as m
from erc_synth.classifiers.quality.c2st import c2st_auc
from erc_synth.classifiers.quality.embeddings import embed_texts
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.gates import GateOptions, bad_line_reason
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.dataset_scripts.text_quality import emotion_words, is_bare_label, is_gibberish, known_words

MELD = get_benchmark("meld")


def _utterances(dialogues) -> list[str]:
    return [u for utterances in dialogues["utterances"] for u in utterances]


def _non_words(rng: random.Random) -> str:
    """A line of made-up words (consonant-vowel strings of 6 to 10 letters), like a derailed small model's."""
    def word() -> str:
        return "".join(rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(3, 5)))

    return " ".join(word() for _ in range(rng.randint(3, 7))).capitalize() + "!"


# --- known answers without real data ---------------------------------------------------------------------------


def test_text_checks_and_cheap_measures_give_hand_computed_answers():
    vocabulary = known_words()
    assert not is_gibberish("I told you, Ross, we were on a break!", vocabulary=vocabulary)
    assert is_gibberish("Achievemall ePscam i mеtter Imad Ijim Jbacg吧! GREAT!!!!", vocabulary=vocabulary)
    assert not is_gibberish("...", vocabulary=vocabulary)  # no letters: nothing to judge
    assert is_bare_label("happiness", emotion_words()) and is_bare_label("Relief!", emotion_words())
    assert not is_bare_label("I feel happiness", emotion_words())
    options = GateOptions()
    assert bad_line_reason("Ohh!", options, vocabulary, emotion_words()) is None  # one word: real speech has it
    assert bad_line_reason("laughter", options, vocabulary, emotion_words()) == {"gate": "bare_label_utterance"}

    corpus = [m.Dialogue(("a b a b", "c d"), (0, 1)), m.Dialogue(("x y z", "x y", "q", "r"), (0, 1, 2, 3))]
    # bigrams: (a,b) (b,a) (a,b) (c,d) (x,y) (y,z) (x,y): 5 distinct of 7
    assert m.distinct_2(m.all_utterances(corpus)) == pytest.approx(5 / 7, abs=1e-6)
    assert m.all_labels_distinct_share(corpus) == 1.0  # only the second dialogue has 4+ turns
    # transitions: (0,1) (0,1) (1,2) (2,3) against (0,1) only: L1 = |2/4 - 1| + 1/4 + 1/4 = 1
    assert m.transition_l1(corpus, [m.Dialogue(("u", "v"), (0, 1))], 4) == pytest.approx(1.0)
    assert m.label_js(corpus, corpus, 4) == pytest.approx(0.0, abs=1e-12)
    assert m.mean_turns(corpus) == 3.0


def test_without_real_data_the_report_says_which_figures_are_missing_and_why():
    corpus = [m.Dialogue(("Hello there, how are you doing?", "Fine, thanks!"), (0, 1))] * 3
    report = quality_report(corpus, MELD)
    assert report["gibberish_share"] == {"synthetic": 0.0, "real": None}
    assert report["c2st_auc"] == {"synthetic": None, "real": None}
    assert report["near_duplicate_dialogue_share"]["synthetic"] == pytest.approx(2 / 3, abs=1e-4)
    assert set(report["missing"]) >= {"c2st_auc", "label_js", "transition_l1", "kappa", "gibberish_share"}
    assert "--real-data" in report["missing"]["c2st_auc"]
    assert "no label audit" in report["missing"]["kappa"]


# --- known answers on the real benchmark -----------------------------------------------------------------------


@pytest.mark.needs_shared_data
def test_c2st_cannot_tell_two_halves_of_a_real_split_apart(shared_data):
    from erc_synth.dataset_scripts.readers import load_reference

    train = load_reference("meld", shared_data)["train"]
    order = np.random.default_rng(0).permutation(len(train))
    half = len(order) // 2
    a = m.sample(_utterances(train.select(order[:half])), 300, seed=1)
    b = m.sample(_utterances(train.select(order[half:])), 300, seed=2)
    result = c2st_auc(embed_texts(a), embed_texts(b), seed=0)
    assert result.n == 300
    assert result.ci_low <= 0.5 <= result.ci_high, result


@pytest.mark.needs_shared_data
def test_c2st_tells_real_text_from_a_copy_with_word_order_shuffled(shared_data):
    from erc_synth.dataset_scripts.readers import load_reference

    rng = random.Random(0)
    # a shuffled line of one or two words is the same line: the test needs lines where order carries meaning
    real = m.sample([u for u in _utterances(load_reference("meld", shared_data)["train"]) if len(u.split()) >= 5],
                    400, seed=3)

    def shuffled(text: str) -> str:
        tokens = text.split()
        rng.shuffle(tokens)
        return " ".join(tokens)

    result = c2st_auc(embed_texts(real), embed_texts([shuffled(u) for u in real]), seed=0)
    assert result.auc >= 0.9, result
    assert result.ci_low > 0.85, result


def _replace_share(dialogues, share: float, seed: int) -> tuple[list[list[str]], set[str]]:
    """The dialogues' utterances with ``share`` of them (seeded) replaced by lines of non-words."""
    rng = random.Random(seed)
    replaced, out = set(), []
    for utterances in dialogues["utterances"]:
        lines = []
        for text in utterances:
            if rng.random() < share:
                text = _non_words(rng)
                replaced.add(text)
            lines.append(text)
        out.append(lines)
    return out, replaced


@pytest.mark.needs_shared_data
def test_thirty_percent_non_words_are_measured_and_dropped_and_real_lines_kept(shared_data):
    from erc_synth.dataset_scripts.readers import load_reference

    test = load_reference("meld", shared_data)["test"]
    mutated, replaced = _replace_share(test, 0.3, seed=5)
    corpus = from_columns(mutated, test["emotions"])
    texts = m.all_utterances(corpus)
    true_share = sum(t in replaced for t in texts) / len(texts)
    assert true_share == pytest.approx(0.3, abs=0.02)
    real_share = m.gibberish_share(from_columns(test["utterances"], test["emotions"]))
    measured = m.gibberish_share(corpus)
    assert measured == pytest.approx(true_share + (1 - true_share) * real_share, abs=0.01)
    assert measured == pytest.approx(0.3, abs=0.04)

    options, vocabulary, labels = GateOptions(), known_words(), emotion_words()
    flagged = [bad_line_reason(t, options, vocabulary, labels) is not None for t in texts]
    assert all(f for f, t in zip(flagged, texts, strict=True) if t in replaced)
    untouched = [f for f, t in zip(flagged, texts, strict=True) if t not in replaced]
    assert sum(untouched) / len(untouched) <= 0.02


# --- the build: gates, card and summary carry the report's figures ---------------------------------------------


def _run_from_texts(path: Path, benchmark: str, dialogues: list[list[str]], emotions: list[list[int]]) -> Path:
    store = RunStore.create_or_open(path, settings_for(benchmark, "natural", len(dialogues)),
                                    {"model_id": "test-model", "model_sha": "abc", "erc_synth_version": "0.1.0"})
    speakers = get_benchmark(benchmark).speakers
    store.append([{"index": i, "attempt": 0, "seed": i, "status": "accepted", "reason": None, "detail": None,
                   "raw_text": "{...}", "target_emotion": None, "utterances": list(u),
                   "speakers": [speakers[t % 4] for t in range(len(u))], "emotions": list(e)}
                  for i, (u, e) in enumerate(zip(dialogues, emotions, strict=True))])
    return path


@pytest.mark.needs_shared_data
def test_build_drops_non_words_and_the_card_and_summary_carry_the_report(tmp_path, shared_data):
    import pyarrow.parquet as pq

    from erc_synth.dataset_scripts.readers import load_reference
    from erc_synth.pipeline import DatasetOutcome, PipelineReport, _build_all
    from erc_synth.preset import load_preset

    dev = load_reference("meld", shared_data)["validation"].select(range(40))
    mutated, replaced = _replace_share(dev, 0.3, seed=7)
    _run_from_texts(tmp_path / "runs" / "meld-synth-natural", "meld", mutated, dev["emotions"])
    preset = load_preset("quickstart")
    outcome = DatasetOutcome(name="meld-synth-natural", benchmark="meld", mode="natural",
                             run_dir=str(tmp_path / "runs" / "meld-synth-natural"))
    _build_all(preset, tmp_path, [outcome], shared_data, None, lambda _: None)

    folder = tmp_path / "datasets" / "meld-synth-natural"
    built = [u for f in sorted((folder / "data" / "dialogues").glob("*.parquet"))
             for us in pq.read_table(f).to_pydict()["utterances"] for u in us]
    assert built and not set(built) & replaced
    build = json.loads((folder / "build_report.json").read_text())["card"]["report"]["gates"]
    assert build["gibberish_utterances"] > 0
    kept_real = sum(1 for d in build["dropped_utterances"] if d["gate"] == "gibberish_utterance"
                    and mutated[d["index"]][d["turn"]] not in replaced)
    assert kept_real <= 0.02 * sum(len(u) for u in dev["utterances"])

    quality = json.loads((folder / "quality.json").read_text())
    assert quality["gibberish_share"]["synthetic"] < 0.05  # the gate removed the non-words
    assert quality["c2st_auc"]["synthetic"] is not None and quality["c2st_auc"]["real"] is not None
    card = (folder / "README.md").read_text()
    section = card.split("## Data quality")[1].split("\n## ")[0]
    for name in ("gibberish_share", "label_js", "distinct_2"):
        row = f"| {name} | {quality[name]['synthetic']:.3f} | {quality[name]['real']:.3f} |"
        assert row in section
    low, high = quality["c2st_auc"]["synthetic_ci"]
    assert f"| c2st_auc | {quality['c2st_auc']['synthetic']:.3f} [{low:.3f}, {high:.3f}] |" in section
    assert "`kappa`: no label audit was run" in section
    yaml_block = card.split("---")[1]
    assert "data_quality:" in yaml_block and f"synthetic: {quality['label_js']['synthetic']}" in yaml_block

    summary = PipelineReport(out_dir=str(tmp_path), preset="quickstart", real_data_dir=str(shared_data),
                             datasets=[outcome]).summary_markdown()
    header, row = summary.splitlines()[2], summary.splitlines()[4]
    assert "| gibberish (real) | C2ST AUC (real) | label JS (real) | kappa (real) |" in header
    for name in ("gibberish_share", "c2st_auc", "label_js"):
        assert f"| {quality[name]['synthetic']:.3f} ({quality[name]['real']:.3f}) |" in row
    assert row.endswith("| n/a (n/a) | - |")  # kappa: no audit in the quickstart preset


# --- the quality command: its output and bad input -------------------------------------------------------------


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "erc_synth.cli", *argv], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def built_iemocap(tmp_path_factory) -> Path:
    from erc_synth.hub_cards import build_folder
    from erc_synth.quality_reporter import ClassifierQualityReporter

    root = tmp_path_factory.mktemp("quality")
    build_folder(make_run_dir(root / "run", "iemocap", "natural", n=12), root / "built",
                 quality_reporter=ClassifierQualityReporter())
    return root / "built"


def test_quality_command_writes_json_markdown_and_plots(built_iemocap, tmp_path):
    result = _cli("quality", str(built_iemocap), "--benchmark", "iemocap", "--out", str(tmp_path / "q"),
                  "--no-c2st")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "q").iterdir()} == {"quality.json", "quality.md", "quality.png"}
    report = json.loads((tmp_path / "q" / "quality.json").read_text())
    stored = json.loads((built_iemocap / "quality.json").read_text())
    assert report["gibberish_share"] == stored["gibberish_share"]
    assert "| gibberish_share |" in (tmp_path / "q" / "quality.md").read_text()
    assert "switched off" in report["missing"]["c2st_auc"]


def _one_error_line(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_quality_command_refuses_a_folder_that_is_not_a_built_set(tmp_path):
    _one_error_line(_cli("quality", str(tmp_path), "--benchmark", "meld", "--out", str(tmp_path / "q")),
                    "build_report.json is missing")


def test_quality_command_refuses_a_benchmark_that_does_not_match_the_set(built_iemocap, tmp_path):
    _one_error_line(_cli("quality", str(built_iemocap), "--benchmark", "meld", "--out", str(tmp_path / "q")),
                    "--benchmark meld")


def test_quality_command_refuses_an_empty_set(built_iemocap, tmp_path):
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    empty = tmp_path / "empty"
    shutil.copytree(built_iemocap, empty)
    for path in (empty / "data" / "dialogues").glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(pa.Table.from_pylist([], schema=table.schema), path)
    _one_error_line(_cli("quality", str(empty), "--benchmark", "iemocap", "--out", str(tmp_path / "q")),
                    "no utterance to measure")


@pytest.mark.needs_shared_data
def test_quality_command_refuses_real_data_of_another_benchmark(built_iemocap, tmp_path, shared_data):
    _one_error_line(_cli("quality", str(built_iemocap), "--benchmark", "iemocap", "--real-data",
                         str(shared_data / "meld"), "--out", str(tmp_path / "q")), "meld")
