"""TODKAT: topic layer, knowledge providers and cache, fusion model, data alignment, Trainer, checkpoints.

Everything runs on tiny random models built in-process (a 2-layer encoder with a word-level tokenizer from
``tiny_encoders``, a 1-layer BART as the COMET-style knowledge model); the Trainer runs are real.
"""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch
from datasets import DatasetDict
from helpers.tiny_encoders import TOY_WORDS, build_encoder, build_tokenizer
from helpers.torch_threads import one_thread  # noqa: F401  (module autouse fixture: one intra-op thread)
from transformers import AutoTokenizer

from erc_synth.classifiers.architectures import get_architecture, utterance_pairs
from erc_synth.classifiers.todkat.knowledge import (
    CometProvider,
    JsonlProvider,
    SentenceEmbedder,
    make_provider,
    render,
    select_knowledge,
)
from erc_synth.classifiers.todkat.topic import TopicEncoder
from erc_synth.dataset_scripts.core.errors import DataFormatError, ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.schema import dialogues_dataset

MELD = get_benchmark("meld")
WORDS = (*TOY_WORDS, "wants", "feels", "others", "speaker", "joyful", "upset", "relax", "win")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> str:
    return str(build_encoder(tmp_path_factory.mktemp("encoder"), WORDS, hidden=32, layers=2))


@pytest.fixture(scope="module")
def tokenizer(encoder):
    return AutoTokenizer.from_pretrained(encoder)


@pytest.fixture(scope="module")
def comet_model(tmp_path_factory) -> str:
    """A tiny random BART saved with a word-level tokenizer: a COMET-style seq2seq model by path."""
    from transformers import BartConfig, BartForConditionalGeneration

    folder = tmp_path_factory.mktemp("comet")
    tok = build_tokenizer((*WORDS, "xintent", "xreact", "oreact", "[gen]"), style="roberta")
    config = BartConfig(
        vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id, forced_bos_token_id=None, forced_eos_token_id=None,
    )
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def toy_dialogues(n: int = 12) -> DatasetDict:
    """Learnable toy dialogues: the emotion is given by a cue word; one utterance a dialogue is unlabelled."""
    cues = [("happy great love", MELD.label_index("joy")), ("angry hate", MELD.label_index("anger")),
            ("sad cry", MELD.label_index("sadness")), ("the table chair", MELD.label_index("neutral"))]
    rows = []
    for d in range(n):
        turns = 2 + d % 4
        utterances, emotions = [], []
        for t in range(turns):
            words, label = cues[(d + t) % len(cues)]
            utterances.append(f"{words} {['ann', 'bob', 'cat', 'dan'][t % 4]}")
            emotions.append(label)
        emotions[-1] = -1  # an unlabelled context utterance at the end of every dialogue
        rows.append({"dialogue_id": f"d{d}", "speakers": ["ann", "bob"] * 3 + ["ann"], "utterances": utterances,
                     "emotions": emotions})
    for row in rows:
        row["speakers"] = row["speakers"][: len(row["utterances"])]
    dataset = dialogues_dataset(MELD, rows)
    return DatasetDict({"train": dataset, "validation": dataset, "test": dataset})


def write_knowledge(path, dialogues: DatasetDict) -> str:
    """A precomputed knowledge JSONL covering every utterance of ``dialogues``."""
    utterances = sorted({u for split in dialogues.values() for d in split["utterances"] for u in d})
    with open(path, "w", encoding="utf-8") as handle:
        for u in utterances:
            handle.write(json.dumps({"utterance": u, "xIntent": ["win", "relax"], "xReact": "joyful",
                                     "oReact": ["upset", "none"]}) + "\n")
    return str(path)


# --- topic layer -------------------------------------------------------------------------------------------


def test_topic_layer_shapes_masks_and_kl(encoder, tokenizer):
    from transformers import AutoModel

    torch.manual_seed(0)
    topic_encoder = TopicEncoder(AutoModel.from_pretrained(encoder), topic_layer=1, topic_dim=8, topic_inner_dim=16)
    topic_encoder.eval()
    batch = tokenizer(["happy", "i hate the table today so very much"], padding=True, return_tensors="pt")
    hidden, topic = topic_encoder(batch["input_ids"], batch["attention_mask"])
    assert hidden.shape == (*batch["input_ids"].shape, 32)  # the topic token is dropped after the last layer
    assert topic.z.shape == topic.mu.shape == topic.logvar.shape == (2, 8)
    assert topic.kl.shape == (2,) and torch.isfinite(topic.kl).all() and (topic.kl > 0).all()
    # Padding must not leak: the short utterance encoded alone gives the same topic and hidden states.
    alone = tokenizer(["happy"], return_tensors="pt")
    hidden_alone, topic_alone = topic_encoder(alone["input_ids"], alone["attention_mask"])
    assert torch.allclose(topic_alone.z[0], topic.z[0], atol=1e-5)
    length = alone["input_ids"].shape[1]
    assert torch.allclose(hidden_alone[0], hidden[0, :length], atol=1e-5)
    # The topic token reaches the upper layers: a different topic vector changes the output.
    with torch.no_grad():
        topic_encoder.topic.decode.bias.add_(1.0)
    shifted, _ = topic_encoder(alone["input_ids"], alone["attention_mask"])
    assert not torch.allclose(shifted, hidden_alone, atol=1e-4)
    # Training mode samples z; evaluation uses the posterior mean (deterministic predictions).
    topic_encoder.train()
    _, sampled = topic_encoder(alone["input_ids"], alone["attention_mask"])
    assert not torch.allclose(sampled.z, sampled.mu)


def test_topic_layer_refuses_an_encoder_without_layers():
    with pytest.raises(ErcSynthError, match=r"encoder\.layer"):
        TopicEncoder(torch.nn.Linear(2, 2), topic_layer=1, topic_dim=4, topic_inner_dim=4)


# --- data alignment and the loss -----------------------------------------------------------------------------


def test_labels_aligned_with_utterances_and_unlabelled_ignored(encoder, tokenizer):
    architecture = get_architecture("todkat")
    options = architecture.options()
    dialogues = toy_dialogues(4)
    prepared = architecture.prepare(dialogues, tokenizer, **options)["train"]
    for row, original in zip(prepared, dialogues["train"], strict=True):
        assert len(row["input_ids"]) == len(row["labels"]) == len(original["utterances"])
        assert row["labels"] == [-100 if e == -1 else e for e in original["emotions"]]
        for ids, text in zip(row["input_ids"], original["utterances"], strict=True):
            assert tokenizer.decode(ids, skip_special_tokens=True) == text
        assert row["length"] == sum(len(ids) for ids in row["input_ids"])
    batch = architecture.collator(tokenizer, **options)([prepared[0], prepared[3]])
    assert batch["input_ids"].shape[:2] == batch["labels"].shape == batch["turn_mask"].shape == (2, 5)
    assert batch["turn_mask"].tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"][0, 2:].tolist() == [-100, -100, -100]  # padding turns
    torch.manual_seed(0)
    model = architecture.build_model(encoder, len(MELD.labels), MELD.labels, **options).eval()
    output = model(**batch)
    assert output.logits.shape == (2, 5, len(MELD.labels))
    assert torch.isfinite(output.kl) and output.kl > 0
    assert torch.allclose(output.loss, output.ce + model.config.kl_weight * output.kl)
    labelled = batch["labels"] != -100
    expected = torch.nn.functional.cross_entropy(output.logits[labelled], batch["labels"][labelled])
    assert torch.allclose(output.ce, expected)
    # Only the -100 keeps the unlabelled utterance out of the loss: a label there would count.
    relabelled = dict(batch, labels=batch["labels"].clone())
    relabelled["labels"][1, 4] = 5
    assert not torch.allclose(model(**relabelled).ce, output.ce)
    # ...and it is still context: other words in it change the prediction of the dialogue's first turn.
    other_text = dict(batch, input_ids=batch["input_ids"].clone())
    other_text["input_ids"][1, 4, 1] = tokenizer.convert_tokens_to_ids("awful")
    assert not torch.allclose(model(**other_text).logits[1, 0], output.logits[1, 0], atol=1e-6)
    predictions, references = utterance_pairs(output.logits.detach().numpy(), batch["labels"].numpy())
    assert references.tolist() == batch["labels"][labelled].tolist()
    assert len(predictions) == int(labelled.sum()) == 1 + 4


# --- knowledge ---------------------------------------------------------------------------------------------


def test_comet_knowledge_cache_makes_the_rerun_free(comet_model, tmp_path):
    utterances = ["i love it", "the table", "i love it"]
    first = CometProvider(comet_model, tmp_path / "cache", num_candidates=2, batch_size=2, max_new_tokens=4)
    tails = first.candidates(utterances)
    assert set(tails) == {"i love it", "the table"}
    assert all(set(v) == {"xIntent", "xReact", "oReact"} for v in tails.values())
    assert first.generate_calls == 3  # one batch (2 distinct utterances) per relation
    second = CometProvider(comet_model, tmp_path / "cache", num_candidates=2, batch_size=2, max_new_tokens=4)
    assert second.candidates(utterances) == tails
    assert second.generate_calls == 0 and second._model is None  # no model call, the model is not even loaded
    # Other generation settings are another cache key: they do call the model.
    third = CometProvider(comet_model, tmp_path / "cache", num_candidates=3, batch_size=2, max_new_tokens=4)
    third.candidates(["the table"])
    assert third.generate_calls == 3


def test_jsonl_provider_reports_bad_lines_and_missing_utterances(tmp_path):
    path = tmp_path / "k.jsonl"
    path.write_text('{"utterance": "hi", "xIntent": ["greet"]}\n{"utterance": "yo", "xReact": 3}\n')
    with pytest.raises(DataFormatError, match=r"k\.jsonl:2.*'xReact'.*3"):
        JsonlProvider(path)
    path.write_text('{"utterance": "hi", "xIntent": ["greet"]}\nnot json\n')
    with pytest.raises(DataFormatError, match=r"k\.jsonl:2: not valid JSON"):
        JsonlProvider(path)
    path.write_text('{"utterance": "hi", "xIntent": "greet"}\n')
    provider = JsonlProvider(path)
    assert provider.candidates(["hi"])["hi"] == {"xIntent": ["greet"], "xReact": [], "oReact": []}
    with pytest.raises(ErcSynthError, match="no entry for 1 utterance"):
        provider.candidates(["hi", "unknown"])
    with pytest.raises(ErcSynthError, match="unknown knowledge provider"):
        make_provider("atomic:x")
    assert make_provider("none") is None


def test_retrieval_keeps_the_candidate_most_similar_to_the_utterance(encoder, tmp_path):
    path = tmp_path / "k.jsonl"
    target = render("xReact", "happy")
    rows = [{"utterance": target, "xReact": ["sad", "happy", "angry"], "xIntent": ["none"], "oReact": []}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    selected = select_knowledge([target], JsonlProvider(path), SentenceEmbedder(encoder))
    assert selected.sentences[target]["xReact"] == target  # identical text: cosine 1, the maximum
    assert selected.sentences[target]["xIntent"] is None  # "none" tails carry no knowledge
    assert selected.embeddings[target]["oReact"] is None
    assert math.isclose(sum(x * x for x in selected.embeddings[target]["xReact"]), 1.0, rel_tol=1e-5)


def test_knowledge_reaches_the_model_and_the_ablation_runs(encoder, tokenizer, comet_model, tmp_path):
    architecture = get_architecture("todkat")
    dialogues = toy_dialogues(3)
    runs = {
        "none": {"knowledge": "none"},
        "jsonl": {"knowledge": f"jsonl:{write_knowledge(tmp_path / 'k.jsonl', dialogues)}", "retriever": encoder},
        "comet": {"knowledge": f"comet:{comet_model}", "knowledge_cache": str(tmp_path / "c"), "retriever": encoder,
                  "num_candidates": 2},
    }
    for name, overrides in runs.items():
        options = architecture.options(overrides)
        prepared = architecture.prepare(dialogues, tokenizer, **options)["train"]
        batch = architecture.collator(tokenizer, **options)(list(prepared))
        torch.manual_seed(0)
        model = architecture.build_model(encoder, len(MELD.labels), MELD.labels, **options).eval()
        output = model(**batch)
        assert output.logits.shape[:2] == batch["labels"].shape and torch.isfinite(output.loss), name
        if name == "none":
            assert "knowledge_embeds" not in batch and model.config.knowledge_dim == 0
            continue
        assert batch["knowledge_embeds"].shape[:3] == (*batch["labels"].shape, 3)
        assert model.config.knowledge_dim == 32
        changed = model(**dict(batch, knowledge_embeds=batch["knowledge_embeds"].flip(-1))).logits
        assert not torch.allclose(changed, output.logits, atol=1e-5), name


# --- training, checkpoints, topic pre-training ---------------------------------------------------------------


def test_trainer_loss_decreases_on_a_learnable_toy_set(encoder, tokenizer, tmp_path):
    from erc_synth.classifiers.training import TrainSettings, evaluate_model, train_stage

    architecture = get_architecture("todkat")
    options = architecture.options({"kl_weight": 0.01, "pooling": "mean"})
    prepared = architecture.prepare(toy_dialogues(12), tokenizer, **options)
    torch.manual_seed(0)
    model = architecture.build_model(encoder, len(MELD.labels), MELD.labels, **options)
    settings = TrainSettings(epochs=15, learning_rate=3e-3, batch_size=4, eval_batch_size=5, logging_steps=3,
                             early_stopping_patience=None, warmup_ratio=0.0)
    trainer = train_stage(architecture, model, tokenizer, prepared["train"], prepared["validation"], tmp_path,
                          settings, list(MELD.labels), options)
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logs[-1]["loss"] < 0.5 * logs[0]["loss"]
    assert all("train_ce" in e and "train_kl" in e and math.isfinite(e["train_kl"]) for e in logs)
    scores = evaluate_model(trainer, architecture, prepared["test"], list(MELD.labels))
    assert scores["weighted_f1"] > 0.9  # cue words decide the label; eval batches pad turns differently
    # Save / load round trip gives the same predictions.
    trainer.model.save_pretrained(tmp_path / "model")
    reloaded = architecture.load_model(str(tmp_path / "model")).eval()
    batch = architecture.collator(tokenizer)(list(prepared["test"]))
    trainer.model.eval()
    assert torch.allclose(reloaded(**batch).logits, trainer.model(**batch).logits, atol=1e-5)


def test_train_topics_cli_writes_a_checkpoint_the_classifier_reuses(encoder, tmp_path, capsys):
    from erc_synth.classifiers.todkat import cli

    data = toy_dialogues(6)
    built = tmp_path / "built" / "data" / "dialogues"
    built.mkdir(parents=True)
    for split, dataset in data.items():
        dataset.to_parquet(str(built / f"{split}-00000-of-00001.parquet"))
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    out = tmp_path / "topics"
    args = parser.parse_args(["train-topics", "--encoder", encoder, "--benchmark", "meld", "--data",
                              str(tmp_path / "built"), "--out", str(out), "--max-steps", "4", "--batch-size", "4",
                              "--topic-dim", "6"])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["utterances"] == sum(len(d) for d in data["train"]["utterances"])
    assert math.isfinite(report["train_loss"])
    from erc_synth.classifiers.todkat.topic import TopicMaskedLM

    pretrained = TopicMaskedLM.from_pretrained(out)
    model = get_architecture("todkat").build_model(str(out), len(MELD.labels), MELD.labels)
    assert model.config.topic_dim == 6
    for name, tensor in pretrained.encoder.state_dict().items():
        assert torch.equal(model.topic_encoder.state_dict()[name], tensor), name
    bad = parser.parse_args(["train-topics", "--encoder", encoder, "--benchmark", "meld", "--data",
                             str(tmp_path / "built"), "--splits", "nope", "--out", str(out)])
    with pytest.raises(ErcSynthError, match="no split"):
        bad.func(bad)
