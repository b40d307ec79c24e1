"""Real Trainer runs on tiny models: learning, unlabelled utterances, regimes, model folder and card."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import DatasetDict
from helpers.tiny_encoders import TOY_WORDS, build_encoder, toy_dialogues, write_built_folder
from helpers.torch_threads import one_thread  # noqa: F401  (module autouse fixture: one intra-op thread)
from transformers import AutoTokenizer, set_seed

from erc_synth.classifiers.architectures import IGNORE_INDEX, get_architecture, utterance_pairs
from erc_synth.classifiers.data import load_real, load_synthetic
from erc_synth.classifiers.scoring import metric_functions, trainer_metrics
from erc_synth.classifiers.training import TrainSettings, run_regime, train_stage
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark

MELD = get_benchmark("meld")
OPTIONS = {"emoberta": {"max_length": 24}, "compm": {"max_length": 24, "max_memory_length": 8}}


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return str(build_encoder(tmp_path_factory.mktemp("training") / "enc", TOY_WORDS, "bert"))


@pytest.fixture(scope="module")
def toy():
    return DatasetDict(train=toy_dialogues(MELD, 40, 1), validation=toy_dialogues(MELD, 12, 2),
                       test=toy_dialogues(MELD, 12, 3, unlabelled_every=4))


def _mean_loss(model, collate, rows) -> float:
    model.eval()
    with torch.no_grad():
        return float(model(**collate(rows)).loss)


@pytest.mark.parametrize("name", ["emoberta", "compm"])
def test_loss_decreases_on_a_learnable_toy_set(name, encoder, toy, tmp_path):
    architecture = get_architecture(name)
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    options = architecture.options(OPTIONS[name])
    set_seed(0)
    model = architecture.build_model(encoder, MELD.num_labels, MELD.labels, **options)
    learnable = DatasetDict(train=toy_dialogues(MELD, 30, 1, one_emotion=True),
                            validation=toy_dialogues(MELD, 8, 2, one_emotion=True))
    prepared = architecture.prepare(learnable, tokenizer, **options)
    collate = architecture.collator(tokenizer, **options)
    rows = list(prepared["train"])
    before = _mean_loss(model, collate, rows)
    settings = TrainSettings(epochs=4, learning_rate=2e-2, batch_size=16, early_stopping_patience=None,
                             logging_steps=100)
    trainer = train_stage(architecture, model, tokenizer, prepared["train"], prepared["validation"],
                          tmp_path / "out", settings, MELD.labels, options)
    after = _mean_loss(trainer.model, collate, rows)
    assert after < 0.8 * before, (before, after)
    assert any("eval_weighted_f1" in entry for entry in trainer.state.log_history)
    assert trainer.state.best_metric is not None  # best checkpoint chosen by validation weighted F1
    assert not list((tmp_path / "out").glob("checkpoint-*"))  # checkpoints cleaned up


def test_metrics_ignore_unlabelled_positions():
    logits = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]])
    labels = np.array([0, IGNORE_INDEX, 2, IGNORE_INDEX])
    predictions, references = utterance_pairs(logits, labels)
    assert predictions.tolist() == [0, 2] and references.tolist() == [0, 2]
    compute = trainer_metrics(get_architecture("emoberta"), ["x", "y", "z"])
    perfect = compute(type("P", (), {"predictions": logits, "label_ids": labels})())
    assert perfect["weighted_f1"] == 1.0 and perfect["accuracy"] == 1.0
    # Dialogue-level outputs (TODKAT): (batch, turns, labels) with -100 padding map to the same pairs.
    predictions, references = utterance_pairs(logits.reshape(2, 2, 3), labels.reshape(2, 2))
    assert predictions.tolist() == [0, 2] and references.tolist() == [0, 2]
    classification_scores = metric_functions()[0]
    assert classification_scores([0, 2], [0, 2], labels=[0, 1, 2])["weighted_f1"] == perfect["weighted_f1"]


def test_emoberta_loss_ignores_unlabelled_examples(encoder, toy):
    architecture = get_architecture("emoberta")
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = architecture.build_model(encoder, MELD.num_labels, MELD.labels).eval()
    collate = architecture.collator(tokenizer)
    rows = list(architecture.prepare(toy, tokenizer, **OPTIONS["emoberta"])["train"])[:4]
    with torch.no_grad():
        reference = model(**collate(rows[:3])).loss
        assert torch.allclose(model(**collate([*rows[:3], {**rows[3], "labels": IGNORE_INDEX}])).loss, reference)


def test_regime_nat_pretrains_then_finetunes_and_writes_a_model_card(encoder, toy, tmp_path):
    real_dir = write_built_folder(toy, tmp_path / "real")
    synthetic = DatasetDict(train=toy_dialogues(MELD, 30, 7), validation=toy_dialogues(MELD, 8, 8),
                            test=toy_dialogues(MELD, 8, 9))
    synthetic_dir = write_built_folder(synthetic, tmp_path / "synthetic")
    real = load_real(MELD, real_dir)
    assert real["test"].features["emotions"].feature.names == list(MELD.labels)
    pretrain = load_synthetic(MELD, str(synthetic_dir))
    settings = TrainSettings(epochs=1, learning_rate=1e-3, batch_size=16, logging_steps=100)
    result = run_regime("emoberta", encoder, MELD, "nat", real, tmp_path / "run", pretrain=pretrain,
                        test_sets={"synthetic_natural": pretrain["test"]}, options=OPTIONS["emoberta"],
                        settings=settings,
                        data_info={"real": str(real_dir), "pretrain": str(synthetic_dir)})
    assert set(result.scores) == {"real", "synthetic_natural"}
    # The real test split has unlabelled utterances (every 4th): they are context, never scored.
    labelled = sum(e != -1 for emotions in real["test"]["emotions"] for e in emotions)
    assert 0 < labelled < sum(len(emotions) for emotions in real["test"]["emotions"])
    assert sum(result.scores["real"]["support"].values()) == labelled
    assert (tmp_path / "run" / "pretrain").is_dir() and (tmp_path / "run" / "finetune").is_dir()
    model_dir = tmp_path / "run" / "model"
    record = json.loads((model_dir / "erc_synth_training.json").read_text())
    assert record["regime"] == "nat" and record["data"]["pretrain"].startswith("local folder 'synthetic' (sha256:")
    card = (model_dir / "README.md").read_text()
    real_wf1 = f"{result.scores['real']['weighted_f1'] * 100:.2f}"
    assert "regime-nat" in card and "pre-trained on a synthetic set" in card and real_wf1 in card
    assert "model-index" in card and "arXiv:2508.05474" in card  # the reference study is cited
    # The saved folder reloads into a model that predicts exactly as scored.
    architecture = get_architecture("emoberta")
    reloaded = architecture.load_model(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    test = architecture.prepare(DatasetDict(test=real["test"]), tokenizer, **OPTIONS["emoberta"])["test"]
    with torch.no_grad():
        logits = reloaded(**architecture.collator(tokenizer)(list(test))).logits.numpy()
    predictions, references = utterance_pairs(logits, np.array(test["labels"]))
    rescored = metric_functions()[0](predictions.tolist(), references.tolist(), label_names=list(MELD.labels))
    assert rescored["weighted_f1"] == pytest.approx(result.scores["real"]["weighted_f1"])


def test_regime_syn_trains_on_the_synthetic_set_only(encoder, toy, tmp_path):
    synthetic = DatasetDict(train=toy_dialogues(MELD, 20, 7), validation=toy_dialogues(MELD, 6, 8),
                            test=toy_dialogues(MELD, 6, 9))
    settings = TrainSettings(epochs=1, learning_rate=1e-3, batch_size=16, logging_steps=100)
    result = run_regime("emoberta", encoder, MELD, "syn", toy, tmp_path / "run", pretrain=synthetic,
                        test_sets={"synthetic_natural": synthetic["test"]}, options=OPTIONS["emoberta"],
                        settings=settings, save_model=False)
    assert set(result.scores) == {"real", "synthetic_natural"}
    assert result.validation["selected_on"] == "synthetic validation"
    assert (tmp_path / "run" / "pretrain").is_dir() and not (tmp_path / "run" / "finetune").exists()


def test_an_option_typo_names_the_closest_declared_option():
    with pytest.raises(ErcSynthError, match="unknown compm option 'max_memory_utterance'; did you mean "
                                            "'max_memory_utterances'"):
        get_architecture("compm").options({"max_memory_utterance": 4})
    assert get_architecture("compm").options({"max_memory_utterances": 4})["max_memory_utterances"] == 4


def test_regime_errors_are_user_errors(encoder, toy, tmp_path):
    with pytest.raises(ErcSynthError, match="needs a synthetic set"):
        run_regime("emoberta", encoder, MELD, "bal", toy, tmp_path)
    with pytest.raises(ErcSynthError, match="unknown architecture"):
        run_regime("bert-crf", encoder, MELD, "org", toy, tmp_path)
    wrong = write_built_folder(DatasetDict(train=toy_dialogues(get_benchmark("iemocap"), 2, 1)), tmp_path / "iem")
    with pytest.raises(ErcSynthError, match="field 'emotions' has labels"):
        load_synthetic(MELD, str(wrong))


def test_same_seed_gives_the_same_model_and_batches_are_length_grouped(encoder, toy, tmp_path):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    architecture = get_architecture("compm")
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    options = architecture.options(OPTIONS["compm"])
    prepared = architecture.prepare(toy, tokenizer, **options)
    settings = TrainSettings(epochs=1, learning_rate=1e-3, batch_size=8, seed=3, logging_steps=100)
    states = []
    for run in range(2):
        set_seed(settings.seed)
        model = architecture.build_model(encoder, MELD.num_labels, MELD.labels, **options)
        trainer = train_stage(architecture, model, tokenizer, prepared["train"], prepared["validation"],
                              tmp_path / f"run{run}", settings, MELD.labels, options)
        states.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    assert isinstance(trainer._get_train_sampler(), LengthGroupedSampler)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_precision_follows_the_hardware():
    from erc_synth.classifiers.training import precision_flags

    if torch.cuda.is_available():
        pytest.skip("checks the CPU behaviour")
    assert precision_flags("auto") == {"bf16": False, "fp16": False, "use_cpu": True}
    with pytest.raises(ErcSynthError, match="needs a GPU"):
        precision_flags("bf16")
