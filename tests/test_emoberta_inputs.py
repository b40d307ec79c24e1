"""EmoBERTa-style input construction, checked token by token with word-level tokenizers."""

from __future__ import annotations

import pytest
from datasets import DatasetDict
from helpers.tiny_encoders import TOY_WORDS, build_tokenizer

from erc_synth.classifiers.emoberta import build_input_ids, prepare
from erc_synth.classifiers.inputs import special_layout
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.schema import dialogues_dataset

MELD = get_benchmark("meld")
# Five utterances; turn 2 is the one classified in most tests.
SPEAKERS = ["ann", "bob", "cat", "ann", "bob"]
UTTERANCES = ["a b c", "d e", "f g h", "i j", "k l m n"]


@pytest.fixture(scope="module", params=["roberta", "bert"])
def tokenizer(request):
    return build_tokenizer(TOY_WORDS, request.param)


def pieces(tokenizer):
    texts = [f"{s}: {u}" for s, u in zip(SPEAKERS, UTTERANCES, strict=True)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def tokens(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens(ids)


def names(tokenizer):
    if tokenizer.cls_token == "<s>":
        return ["<s>"], ["</s>", "</s>"], ["</s>"]
    return ["[CLS]"], ["[SEP]"], ["[SEP]"]


def test_layout_comes_from_the_tokenizer_pair_template(tokenizer):
    layout = special_layout(tokenizer)
    prefix, middle, suffix = names(tokenizer)
    assert tokens(tokenizer, layout.prefix) == prefix
    assert tokens(tokenizer, layout.middle) == middle
    assert tokens(tokenizer, layout.suffix) == suffix


def test_full_context_fits(tokenizer):
    prefix, middle, suffix = names(tokenizer)
    ids = build_input_ids(pieces(tokenizer), 2, special_layout(tokenizer), 200)
    assert tokens(tokenizer, ids) == [
        *prefix, "ann", ":", "a", "b", "c", "bob", ":", "d", "e",
        *middle, "cat", ":", "f", "g", "h",
        *middle, "ann", ":", "i", "j", "bob", ":", "k", "l", "m", "n",
        *suffix,
    ]


def test_context_is_added_alternately_and_cut_on_the_far_side(tokenizer):
    prefix, middle, suffix = names(tokenizer)
    layout = special_layout(tokenizer)
    specials = len(prefix) + 2 * len(middle) + len(suffix)
    # Budget after the current utterance (5 tokens): past-1 "bob : d e" (4) + future-1 "ann : i j" (4) fit,
    # then 3 tokens are left for past-2 "ann : a b c", which keeps its END (nearest the current utterance).
    ids = build_input_ids(pieces(tokenizer), 2, layout, specials + 5 + 4 + 4 + 3)
    assert tokens(tokenizer, ids) == [
        *prefix, "a", "b", "c", "bob", ":", "d", "e",
        *middle, "cat", ":", "f", "g", "h",
        *middle, "ann", ":", "i", "j",
        *suffix,
    ]
    # With 2 tokens left after past-1, future-1 "ann : i j" is cut at its end (keeping its beginning) and
    # filling stops: past-2 gets nothing.
    ids = build_input_ids(pieces(tokenizer), 2, layout, specials + 5 + 4 + 2)
    assert tokens(tokenizer, ids) == [
        *prefix, "bob", ":", "d", "e",
        *middle, "cat", ":", "f", "g", "h",
        *middle, "ann", ":",
        *suffix,
    ]


def test_past_only_and_no_context(tokenizer):
    prefix, middle, suffix = names(tokenizer)
    layout = special_layout(tokenizer)
    ids = build_input_ids(pieces(tokenizer), 2, layout, 200, context="past")
    assert tokens(tokenizer, ids) == [*prefix, "ann", ":", "a", "b", "c", "bob", ":", "d", "e", *middle,
                                      "cat", ":", "f", "g", "h", *suffix]
    ids = build_input_ids(pieces(tokenizer), 2, layout, 200, context="none")
    assert tokens(tokenizer, ids) == [*prefix, "cat", ":", "f", "g", "h", *suffix]


def test_first_and_last_turns_keep_empty_segments(tokenizer):
    prefix, middle, suffix = names(tokenizer)
    layout = special_layout(tokenizer)
    first = tokens(tokenizer, build_input_ids(pieces(tokenizer), 0, layout, 12))
    assert first[: len(prefix) + len(middle)] == [*prefix, *middle]
    assert first[len(prefix) + len(middle):][:5] == ["ann", ":", "a", "b", "c"]
    last = tokens(tokenizer, build_input_ids(pieces(tokenizer), 4, layout, 200))
    assert last[-(len(middle) + len(suffix)):] == [*middle, *suffix]


def test_an_overlong_current_utterance_is_cut_at_its_end_and_gets_no_context(tokenizer):
    prefix, middle, suffix = names(tokenizer)
    specials = len(prefix) + 2 * len(middle) + len(suffix)
    ids = build_input_ids(pieces(tokenizer), 4, special_layout(tokenizer), specials + 3)
    assert tokens(tokenizer, ids) == [*prefix, *middle, "bob", ":", "k", *middle, *suffix]


def test_prepare_skips_unlabelled_targets_but_keeps_them_as_context(tokenizer):
    dialogues = DatasetDict({"test": dialogues_dataset(MELD, [{
        "dialogue_id": "d1", "speakers": SPEAKERS[:3], "utterances": UTTERANCES[:3], "emotions": [1, -1, 3],
    }])})
    prepared = prepare(dialogues, tokenizer, max_length=64)["test"]
    assert prepared["turn"] == [0, 2]
    assert prepared["labels"] == [1, 3]
    assert prepared["length"] == [len(ids) for ids in prepared["input_ids"]]
    assert "d" in tokens(tokenizer, prepared["input_ids"][1])  # the unlabelled turn 1 ("d e") is context
    kept = prepare(dialogues, tokenizer, max_length=64, drop_unlabelled=False)["test"]
    assert kept["labels"] == [1, -100, 3]


def test_minilm_tokenizer_gets_bert_separators():
    """The offline MiniLM encoder (a BERT tokenizer) gets [CLS] A [SEP] B [SEP] C [SEP], not RoBERTa's </s></s>."""
    from transformers import AutoTokenizer

    from erc_synth.classifiers.encoders import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    layout = special_layout(tokenizer)
    assert tokens(tokenizer, layout.prefix) == ["[CLS]"]
    assert tokens(tokenizer, layout.middle) == ["[SEP]"] and tokens(tokenizer, layout.suffix) == ["[SEP]"]


@pytest.mark.needs_shared_data
def test_real_meld_dialogue_inputs(shared_data):
    """On the real MELD test split: every example holds its own utterance, tagged, inside the budget."""
    from transformers import AutoTokenizer

    from erc_synth.classifiers.data import limit_dialogues, load_real
    from erc_synth.classifiers.encoders import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    real = limit_dialogues(load_real(MELD, shared_data), {"test": 3})
    dialogues = DatasetDict(test=real["test"])
    prepared = prepare(dialogues, tokenizer, max_length=64)["test"]
    assert len(prepared) == sum(len(d["utterances"]) for d in dialogues["test"])
    sep = tokenizer.sep_token_id
    by_id = {dialogue["dialogue_id"]: dialogue for dialogue in dialogues["test"]}
    for row in prepared:
        dialogue = by_id[row["dialogue_id"]]
        ids = row["input_ids"]
        assert len(ids) <= 64 and ids[0] == tokenizer.cls_token_id and ids[-1] == sep
        current = ids[ids.index(sep) + 1:]
        current = current[: current.index(sep)]
        expected = tokenizer(f"{dialogue['speakers'][row['turn']]}: {dialogue['utterances'][row['turn']]}",
                             add_special_tokens=False)["input_ids"]
        assert current == expected[: len(current)] and len(current) > 0
