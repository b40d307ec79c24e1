"""The label-fidelity line of the quality report end to end: a real trained judge, its kappa on the synthetic set
beside its own kappa on the real test labels (the ceiling), on the card and in ``quality.json``.

The judge is the audit's real MiniLM classifier, trained for a few steps so the test stays short; the ceiling is
checked against a direct call of ``judge_real_kappa`` with the same judge and cache, so both come from one judge.
"""

from __future__ import annotations

import json

import pytest
from helpers.builder_support import make_run_dir

pytestmark = [pytest.mark.slow, pytest.mark.needs_shared_data]


def test_quality_report_carries_the_audit_kappa_and_the_judges_ceiling_on_real_test(tmp_path, shared_data):
    from huggingface_hub import DatasetCard

    from erc_synth.classifiers.audit import JudgeSettings
    from erc_synth.classifiers.quality.kappa import judge_real_kappa
    from erc_synth.dataset_scripts.core.registry import get_benchmark
    from erc_synth.hub_cards.folder import own_series, prepare_run, write_folder
    from erc_synth.label_auditor import ClassifierAuditor
    from erc_synth.quality_reporter import ClassifierQualityReporter

    run = make_run_dir(tmp_path / "run", "iemocap", "natural", n=12, plant_duplicates=False)
    judge = JudgeSettings(limit_train=40, limit_validation=4, limit_test=4, max_steps=30, batch_size=16)
    cache = tmp_path / "judges"
    prepared = prepare_run(run, real_data_dir=shared_data, audit="train", label_policy="llm", judge_settings=judge,
                           audit_cache_dir=cache, auditor=ClassifierAuditor(),
                           quality_reporter=ClassifierQualityReporter(), quality_c2st=False)
    write_folder(prepared, tmp_path / "out", own_series(prepared))

    quality = json.loads((tmp_path / "out" / "quality.json").read_text())
    audit = json.loads((tmp_path / "out" / "audit" / "audit.json").read_text())
    ceiling = judge_real_kappa("train", get_benchmark("iemocap"), shared_data, cache_dir=cache, judge_settings=judge)
    assert quality["kappa"]["synthetic"] == audit["kappa"]
    assert quality["kappa"]["real"] == ceiling["kappa"]
    assert isinstance(ceiling["kappa"], float) and ceiling["num_utterances"] > 100
    assert "kappa" not in quality.get("missing", {})
    block = DatasetCard.load(tmp_path / "out" / "README.md").data.to_dict()["data_quality"]
    assert block["kappa"] == quality["kappa"]
