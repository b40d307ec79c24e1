"""classification_scores, the critical-difference plot, and the module loaded through ``evaluate.load``."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import evaluate
import numpy as np
import pytest
from matplotlib import image
from sklearn.metrics import accuracy_score, f1_score

from erc_synth.evaluate_metrics import metric_path
from erc_synth.evaluate_metrics.erc_metrics import classification_scores, critical_difference_plot, friedman_test

MELD_LABELS = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
MODULE_FILE = Path(metric_path()) / "erc_metrics.py"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_sklearn_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    references = rng.integers(0, 7, size=500)
    predictions = np.where(rng.random(500) < 0.6, references, rng.integers(0, 7, size=500))
    result = classification_scores(predictions.tolist(), references.tolist(), label_names=MELD_LABELS)
    labels = list(range(7))
    assert result["weighted_f1"] == pytest.approx(f1_score(references, predictions, average="weighted"))
    assert result["macro_f1"] == pytest.approx(f1_score(references, predictions, average="macro"))
    assert result["micro_f1"] == pytest.approx(f1_score(references, predictions, average="micro"))
    assert result["accuracy"] == pytest.approx(accuracy_score(references, predictions))
    per_class = f1_score(references, predictions, average=None, labels=labels)
    assert list(result["per_class_f1"]) == MELD_LABELS
    assert list(result["per_class_f1"].values()) == pytest.approx(per_class.tolist())
    assert result["support"] == {name: int(np.sum(references == i)) for i, name in enumerate(MELD_LABELS)}
    assert all(0.0 <= result[key] <= 1.0 for key in ("weighted_f1", "macro_f1", "micro_f1", "accuracy"))


def test_ignore_index_items_are_left_out() -> None:
    references = [0, -100, 1, 2, -100, 2, 1]
    predictions = [0, 2, 1, 1, 0, 2, 0]
    kept = [i for i, ref in enumerate(references) if ref != -100]
    expected = classification_scores([predictions[i] for i in kept], [references[i] for i in kept])
    assert classification_scores(predictions, references) == expected
    assert expected["support"] == {0: 1, 1: 2, 2: 2}
    # A prediction of ignore_index on a labelled item is an undecoded output, not a class.
    with pytest.raises(ValueError, match=r"predictions\[1\] equals ignore_index"):
        classification_scores([0, -100], [0, 1])
    assert classification_scores([0, 5], [0, 5], ignore_index=5)["accuracy"] == 1.0


def test_labels_restrict_the_average_but_not_accuracy() -> None:
    references = [0, 0, 1, 1, 2, 2]
    predictions = [0, 1, 1, 1, 0, 2]
    result = classification_scores(predictions, references, label_names=["neutral", "joy", "anger"], labels=[1, 2])
    assert list(result["per_class_f1"]) == ["joy", "anger"]
    expected = f1_score(references, predictions, labels=[1, 2], average="weighted")
    assert result["weighted_f1"] == pytest.approx(expected)
    assert result["accuracy"] == pytest.approx(4 / 6)


@pytest.mark.parametrize(
    ("predictions", "references", "kwargs", "message"),
    [
        ([0, 1, 1], [0, 1], {}, "differ in length: 3 != 2"),
        ([[0.1, 0.9], [0.8, 0.2]], [1, 0], {}, "1-D sequence of class ids"),
        ([0.5, 1.0], [0, 1], {}, r"predictions\[0\] = 0.5 is not an integer"),
        (["joy", "anger"], [0, 1], {}, "integer class ids"),
        ([-100, -100], [-100, -100], {}, "no labelled items"),
        ([0, 7], [0, 1], {"label_names": MELD_LABELS}, "class id 7, outside 0..6"),
        ([0, 1], [0, 1], {"label_names": ["a", "a"]}, "duplicates"),
        ([0, 1], [0, 1], {"labels": []}, "labels is empty"),
    ],
)
def test_bad_input_is_refused(predictions, references, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        classification_scores(predictions, references, **kwargs)


def test_critical_difference_plot_writes_a_png(tmp_path: Path) -> None:
    scores = np.random.default_rng(0).random((12, 5)) + np.linspace(0.5, 0, 5)
    result = friedman_test(scores.tolist(), ["base", "synth", "mix", "other", "tiny"])
    path = critical_difference_plot(result, tmp_path / "cd.png")
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 300
    assert pixels.min() < 0.2  # something was drawn in black
    unreachable = friedman_test([[0.1, 0.2], [0.3, 0.2]], ["a", "b"])  # k = n = 2: no significant difference
    assert unreachable["critical_differences"][0.05] is None
    assert critical_difference_plot(unreachable, tmp_path / "none.png", alpha=0.01).stat().st_size > 0
    with pytest.raises(ValueError, match=r"no critical difference at alpha=0\.2"):
        critical_difference_plot(result, tmp_path / "bad.png", alpha=0.2)


def test_module_imports_nothing_from_erc_synth() -> None:
    """The file is pushed alone to the Hub, so it may import only libraries that evaluate users have."""
    allowed = {"__future__", "math", "collections", "fractions", "functools", "itertools", "pathlib", "types"}
    allowed |= {"typing", "datasets", "evaluate", "numpy", "scipy", "sklearn", "matplotlib"}
    imported = set()
    for node in ast.walk(ast.parse(MODULE_FILE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports would not travel with the single file"
            imported.add(node.module.split(".")[0])
    assert imported <= allowed, imported - allowed


@pytest.fixture(scope="module")
def standalone_module(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The module folder copied alone (script + card), as it would be on the Hub."""
    folder = tmp_path_factory.mktemp("hub") / "erc_metrics"
    folder.mkdir()
    for name in ("erc_metrics.py", "README.md"):
        shutil.copy(Path(metric_path()) / name, folder / name)
    return str(folder)


def test_default_config_loads_by_path_and_matches_the_python_api(standalone_module: str) -> None:
    metric = evaluate.load(standalone_module, keep_in_memory=True)
    assert metric.config_name == "default"
    predictions, references = [0, 1, 2, 2, 3, 0], [0, 1, 1, 2, -100, 3]
    metric.add_batch(predictions=predictions[:3], references=references[:3])
    result = metric.compute(predictions=predictions[3:], references=references[3:], label_names=MELD_LABELS)
    assert result == classification_scores(predictions, references, label_names=MELD_LABELS)
    with pytest.raises(ValueError, match='input of the "friedman" config'):
        metric.compute(predictions=[0], references=[0], scores=[[0.1, 0.2]])


def test_friedman_config_loads_by_path_and_matches_the_python_api(standalone_module: str) -> None:
    metric = evaluate.load(standalone_module, "friedman", keep_in_memory=True)
    scores = np.random.default_rng(1).random((6, 3)).round(2).tolist()
    names = ["base", "synth", "other"]
    for row in scores[:3]:
        metric.add(scores=row)
    result = metric.compute(scores=scores[3:], system_names=names, comparisons=[["synth", "base"]], correction="holm")
    assert result == friedman_test(scores, names, comparisons=[("synth", "base")], correction="holm")
    with pytest.raises(ValueError, match=r"scores\[1\] has 2 scores but there are 3 systems"):
        metric.compute(scores=[[0.1, 0.2, 0.3], [0.1, 0.2]], system_names=names)


def test_package_folder_loads_with_its_init_present() -> None:
    """Loading the repository folder itself (which also holds __init__.py) must work offline too."""
    metric = evaluate.load(metric_path(), "friedman", keep_in_memory=True)
    result = metric.compute(scores=[[1, 2], [2, 1], [3, 1]], system_names=["a", "b"])
    assert result["rank_sums"] == {"a": 4.0, "b": 5.0}  # higher is better: a wins blocks 2 and 3


def test_metric_card_example_runs_and_prints_what_it_promises(monkeypatch: pytest.MonkeyPatch) -> None:
    """The card's code block is executed from the repository root, where its relative path resolves."""
    card = (Path(metric_path()) / "README.md").read_text(encoding="utf-8")
    code = card.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(Path(metric_path()).parents[1])
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"]["pairwise"][0]["p_value"] == pytest.approx(0.11265, abs=1e-5)
    assert "'p_value': 0.11265" in code and "'weighted_f1': 0.7778" in code
    scores = namespace["f1"].compute(predictions=[0, 1, 2, 2], references=[0, 1, 1, -100], label_names=["n", "j", "a"])
    assert round(scores["weighted_f1"], 4) == 0.7778


def test_unknown_config_is_refused(standalone_module: str) -> None:
    with pytest.raises(ValueError, match="unknown config 'wilcoxon'"):
        evaluate.load(standalone_module, "wilcoxon", keep_in_memory=True)
