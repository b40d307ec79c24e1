"""CoMPM: the speaker memory holds the right utterances, batching with masks changes nothing, save/load works."""

from __future__ import annotations

import pytest
import torch
from datasets import DatasetDict
from helpers.tiny_encoders import TOY_WORDS, build_encoder
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from erc_synth.classifiers.compm import CompmCollator, CompmModel, prepare, speaker_memory_turns
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.schema import dialogues_dataset

MELD = get_benchmark("meld")
SPEAKERS = ["ann", "bob", "ann", "cat", "bob", "ann"]
UTTERANCES = ["a b", "c d", "e f g", "h", "i j", "k l"]
EMOTIONS = [0, 1, 3, 4, 1, 0]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return str(build_encoder(tmp_path_factory.mktemp("compm") / "enc", TOY_WORDS, "roberta"))


@pytest.fixture(scope="module")
def tokenizer(encoder):
    return AutoTokenizer.from_pretrained(encoder)


@pytest.fixture(scope="module")
def prepared(tokenizer):
    dialogues = DatasetDict({"test": dialogues_dataset(MELD, [{
        "dialogue_id": "d", "speakers": SPEAKERS, "utterances": UTTERANCES, "emotions": EMOTIONS}])})
    return prepare(dialogues, tokenizer, max_length=12, max_memory_length=3)["test"]


def test_memory_turns_are_the_current_speakers_earlier_ones():
    assert speaker_memory_turns(SPEAKERS, 0) == []
    assert speaker_memory_turns(SPEAKERS, 2) == [0]
    assert speaker_memory_turns(SPEAKERS, 4) == [1]
    assert speaker_memory_turns(SPEAKERS, 5) == [0, 2]
    assert speaker_memory_turns(SPEAKERS, 5, limit=1) == [2]


def test_prepared_memory_and_context_token_by_token(prepared, tokenizer):
    def toks(ids):
        return tokenizer.convert_ids_to_tokens(ids)

    last = prepared[5]  # ann's third utterance
    assert [toks(m) for m in last["memory_input_ids"]] == [["<s>", "a", "b"], ["<s>", "f", "g"]]  # kept the end
    # Context: every turn up to the current one, truncated from the left to 11 tokens after <s>.
    assert toks(last["input_ids"]) == ["<s>", "cat", ":", "h", "bob", ":", "i", "j", "ann", ":", "k", "l"]
    assert prepared[3]["memory_input_ids"] == []  # cat speaks for the first time
    assert toks(prepared[0]["input_ids"]) == ["<s>", "ann", ":", "a", "b"]  # no future context


def test_batched_forward_equals_one_example_at_a_time(encoder, prepared, tokenizer):
    """Attention masks and padded memories must make batching invisible (the reference runs batch size 1)."""
    model = CompmModel.from_encoder(encoder, MELD.num_labels, MELD.labels).eval()
    collate = CompmCollator(tokenizer)
    rows = list(prepared)
    with torch.no_grad():
        batched = model(**collate(rows)).logits
        single = torch.cat([model(**collate([row])).logits for row in rows])
    assert torch.allclose(batched, single, atol=1e-5)
    # The memory really is used: dropping it changes the logits of a turn that has one.
    with torch.no_grad():
        batch = collate(rows[5:6])
        without = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert not torch.allclose(without, single[5:6])


def test_save_and_load_round_trip(encoder, prepared, tokenizer, tmp_path):
    model = CompmModel.from_encoder(encoder, MELD.num_labels, MELD.labels, gru_layers=1).eval()
    batch = CompmCollator(tokenizer)(list(prepared))
    model.save_pretrained(tmp_path / "saved")
    for loaded in (CompmModel.from_pretrained(tmp_path / "saved"),
                   AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")):
        assert isinstance(loaded, CompmModel)
        assert loaded.config.id2label[3] == "anger"
        with torch.no_grad():
            assert torch.allclose(loaded.eval()(**batch).logits, model(**batch).logits, atol=1e-6)


def test_loss_ignores_unlabelled_examples(encoder, prepared, tokenizer):
    model = CompmModel.from_encoder(encoder, MELD.num_labels, MELD.labels).eval()
    collate = CompmCollator(tokenizer)
    rows = list(prepared)
    with torch.no_grad():
        labelled = model(**collate(rows[:3])).loss
        marked = [*rows[:3], {**rows[3], "labels": -100}]
        assert torch.allclose(model(**collate(marked)).loss, labelled)
