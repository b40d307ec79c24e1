"""The dialogue grammars: what they accept and refuse, in Python's ``re`` and in xgrammar (the decoder's engine)."""

from __future__ import annotations

import json
import re

import pytest
import xgrammar

from erc_synth.dataset_scripts.core.registry import BENCHMARKS, get_benchmark
from erc_synth.generation.grammar import LABEL_FORMATS, dialogue_json_schema, dialogue_regex, escape_literal

MELD = get_benchmark("meld")
EMORY = get_benchmark("emorynlp")


@pytest.fixture(scope="module")
def compiler() -> xgrammar.GrammarCompiler:
    """A compiler over a character vocabulary, so strings are fed to the matcher character by character."""
    vocab = [chr(code) for code in range(32, 127)] + ["\n", "é", "</s>"]
    info = xgrammar.TokenizerInfo(vocab, stop_token_ids=[len(vocab) - 1])
    return xgrammar.GrammarCompiler(info)


def xgrammar_accepts(compiler: xgrammar.GrammarCompiler, grammar: str, text: str, *, schema: bool = False) -> bool:
    compiled = compiler.compile_json_schema(grammar) if schema else compiler.compile_regex(grammar)
    matcher = xgrammar.GrammarMatcher(compiled)
    return matcher.accept_string(text) and matcher.is_completed()


VALID = "Rachel: Oh my God, you're here! (1)\nRoss: Yeah. Hi. (0)\nJoey: How you doin'? (2)"
REFUSED = {
    "unknown speaker": "Rachel: Hi. (1)\nBob: Hello. (0)",
    "label out of range": "Rachel: Hi. (1)\nRoss: Hello. (7)",
    "two-digit label": "Rachel: Hi. (1)\nRoss: Hello. (10)",
    "too few turns": "Rachel: Hi. (1)",
    "too many turns": "\n".join(["Rachel: Hi. (1)"] * 5),
    "missing label": "Rachel: Hi. (1)\nRoss: Hello.",
    "empty utterance": "Rachel: Hi. (1)\nRoss:  (0)",
    "trailing newline": "Rachel: Hi. (1)\nRoss: Hello. (0)\n",
    "parenthesis in utterance": "Rachel: Hi (there). (1)\nRoss: Hello. (0)",
    "utterance too long": "Rachel: " + "a" * 41 + " (1)\nRoss: Hello. (0)",
    "speaker prefix only": "Rach: Hi. (1)\nRoss: Hello. (0)",
}


@pytest.fixture(scope="module")
def meld_regex() -> str:
    return dialogue_regex(MELD.speakers, MELD.num_labels, 2, 4, max_utterance_chars=40)


def test_regex_accepts_a_well_formed_dialogue_in_re_and_xgrammar(meld_regex, compiler):
    assert re.fullmatch(meld_regex, VALID)
    assert xgrammar_accepts(compiler, meld_regex, VALID)


@pytest.mark.parametrize("reason", sorted(REFUSED))
def test_regex_refuses_malformed_dialogues_in_re_and_xgrammar(meld_regex, compiler, reason):
    text = REFUSED[reason]
    assert re.fullmatch(meld_regex, text) is None
    assert not xgrammar_accepts(compiler, meld_regex, text)


def test_turn_bounds_are_exact():
    regex = dialogue_regex(["M", "F"], 6, 3, 3)
    lines = ["M: Hello. (0)", "F: Hi! (1)", "M: Bye. (5)", "F: Bye. (2)"]
    assert re.fullmatch(regex, "\n".join(lines[:3]))
    assert not re.fullmatch(regex, "\n".join(lines[:2]))
    assert not re.fullmatch(regex, "\n".join(lines))


def test_speaker_names_with_spaces_and_metacharacters_are_literal(compiler):
    regex = dialogue_regex(["Janice Litman Goralnik", "Mr. Heckles", "A+B"], 7, 1, 2)
    assert re.fullmatch(regex, "Janice Litman Goralnik: Oh. My. God. (1)\nMr. Heckles: Quiet! (3)")
    assert xgrammar_accepts(compiler, regex, "A+B: Hm. (0)")
    assert not re.fullmatch(regex, "Mrx Heckles: Quiet! (3)")  # the dot is escaped
    assert not re.fullmatch(regex, "AAB: Hm. (0)")  # so is the plus
    assert escape_literal("Rachel Green") == "Rachel Green"  # spaces stay unescaped (xgrammar warns on "\ ")


def test_non_ascii_utterances_are_allowed(compiler):
    regex = dialogue_regex(["Ross"], 7, 1, 1)
    assert re.fullmatch(regex, "Ross: Café au lait? (0)")
    assert xgrammar_accepts(compiler, regex, "Ross: Café au lait? (0)")


def test_target_label_requires_one_line_with_it(compiler):
    regex = dialogue_regex(MELD.speakers, MELD.num_labels, 2, 4, target_label=4)
    with_target = "Rachel: Hi. (1)\nRoss: I miss her. (4)\nJoey: Oh. (0)"
    without = "Rachel: Hi. (1)\nRoss: I miss her. (3)\nJoey: Oh. (0)"
    target_first = "Ross: Sad. (4)\n" + "Joey: Ok. (0)\n" * 2 + "Joey: x (0)"
    for text in (with_target, "Ross: Sad. (4)\nRoss: Sadder. (4)", target_first):
        assert re.fullmatch(regex, text), text
        assert xgrammar_accepts(compiler, regex, text), text
    assert not re.fullmatch(regex, without)
    assert not xgrammar_accepts(compiler, regex, without)
    # turn bounds still hold with a target
    assert not re.fullmatch(regex, "Ross: Sad. (4)")
    assert not re.fullmatch(regex, "\n".join(["Ross: Sad. (4)"] * 5))


@pytest.mark.parametrize("label_format", LABEL_FORMATS)
def test_every_benchmark_grammar_compiles_in_xgrammar_and_takes_a_dialogue(compiler, label_format):
    for benchmark in BENCHMARKS.values():
        low, high = benchmark.turns
        last = benchmark.num_labels - 1
        token = str(last) if label_format == "number" else benchmark.labels[last]
        first, second = benchmark.speakers[:2]
        if label_format == "word_first":
            lines = [f"{first} ({token}): Hi there." if i % 2 else f"{second} ({token}): Oh." for i in range(low)]
        else:
            lines = [f"{first}: Hi there. ({token})" if i % 2 else f"{second}: Oh. ({token})" for i in range(low)]
        dialogue = "\n".join(lines)
        for target in (None, last):
            regex = dialogue_regex(benchmark.speakers, benchmark.num_labels, low, high, target_label=target,
                                   label_format=label_format, label_names=benchmark.labels)
            assert xgrammar_accepts(compiler, regex, dialogue), (benchmark.name, target)
            assert not xgrammar_accepts(compiler, regex, "\n".join(lines[:-1] or ["x"])), (benchmark.name, target)
        schema = dialogue_json_schema(benchmark.speakers, benchmark.num_labels, low, high, label_format=label_format,
                                      label_names=benchmark.labels)
        turn = {"speaker": first, "utterance": "Hi.", "emotion": last if label_format == "number" else token}
        assert xgrammar_accepts(compiler, json.dumps(schema), json.dumps({"turns": [turn] * low}), schema=True)


def test_utterances_start_and_end_with_a_character_the_parser_keeps():
    regex = dialogue_regex(["Ross"], 7, 1, 1, max_utterance_chars=10)
    assert re.fullmatch(regex, "Ross: Hi\x85there (0)")  # a splitlines() break inside is fine: the parser keeps it
    for utterance in (" Hi", "Hi ", '"Hi"', "*Hi", "Hi_", "\u2028Hi", "Hi\xa0"):
        assert not re.fullmatch(regex, f"Ross: {utterance} (0)"), utterance
    assert re.fullmatch(dialogue_regex(["Ross"], 7, 1, 1, max_utterance_chars=1), "Ross: ! (0)")


def test_word_formats_name_the_label_and_refuse_numbers():
    names = MELD.labels
    after = dialogue_regex(["Ross"], 7, 1, 1, label_format="word", label_names=names, target_label=3)
    assert re.fullmatch(after, "Ross: How dare you! (anger)")
    assert not re.fullmatch(after, "Ross: How dare you! (3)") and not re.fullmatch(after, "Ross: Yay! (joy)")
    first = dialogue_regex(["Ross"], 7, 1, 1, label_format="word_first", label_names=names)
    assert re.fullmatch(first, "Ross (sadness): I miss her.")
    assert not re.fullmatch(first, "Ross: I miss her. (sadness)")
    with pytest.raises(ValueError, match="label_names"):
        dialogue_regex(["Ross"], 7, 1, 1, label_format="word")
    with pytest.raises(ValueError, match="label_format"):
        dialogue_regex(["Ross"], 7, 1, 1, label_format="emoji")


def test_more_than_ten_labels_use_an_alternation():
    regex = dialogue_regex(["A"], 12, 1, 1)
    assert re.fullmatch(regex, "A: x (11)")
    assert not re.fullmatch(regex, "A: x (12)")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"speakers": []}, "speaker"),
        ({"speakers": ["Bad (name)"]}, "speaker name"),
        ({"speakers": ["Re: x"]}, "speaker name"),
        ({"num_labels": 0}, "num_labels"),
        ({"min_turns": 5, "max_turns": 4}, "min_turns"),
        ({"min_turns": 0}, "min_turns"),
        ({"target_label": 7}, "target_label"),
        ({"max_utterance_chars": 0}, "max_utterance_chars"),
    ],
)
def test_invalid_arguments_are_refused(kwargs, message):
    arguments = {"speakers": ["Ross"], "num_labels": 7, "min_turns": 1, "max_turns": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        dialogue_regex(**arguments)
    if "num_labels" not in kwargs:  # the schema takes the same checks (num_labels only bounds an integer)
        with pytest.raises(ValueError, match=message):
            dialogue_json_schema(**arguments)


def test_json_schema_shape_and_limits(compiler):
    schema = dialogue_json_schema(["Ross", "Rachel"], 7, 2, 3, max_utterance_chars=20)
    turns = schema["properties"]["turns"]
    assert (turns["minItems"], turns["maxItems"]) == (2, 3)
    item = turns["items"]["properties"]
    assert item["speaker"]["enum"] == ["Ross", "Rachel"]
    assert (item["emotion"]["minimum"], item["emotion"]["maximum"]) == (0, 6)
    assert "contains" not in turns
    text = json.dumps(schema)

    def turn(speaker: str, emotion: int, utterance: str = "Hi.") -> dict:
        return {"speaker": speaker, "utterance": utterance, "emotion": emotion}

    good = {"turns": [turn("Ross", 0), turn("Rachel", 6)]}
    assert xgrammar_accepts(compiler, text, json.dumps(good), schema=True)
    for bad in (
        {"turns": [turn("Ross", 0)]},
        {"turns": [turn("Ross", 0), turn("Joey", 1)]},
        {"turns": [turn("Ross", 0), turn("Rachel", 7)]},
        {"turns": [turn("Ross", 0), turn("Rachel", 1, "x" * 21)]},
        {"turns": [turn("Ross", 0)] * 4},
    ):
        assert not xgrammar_accepts(compiler, text, json.dumps(bad), schema=True), bad


def test_json_schema_target_label_is_a_contains_clause():
    schema = dialogue_json_schema(["Ross"], 7, 1, 3, target_label=2)
    assert schema["properties"]["turns"]["contains"] == {
        "type": "object",
        "properties": {"emotion": {"const": 2}},
    }


def test_grammars_are_pure_and_deterministic():
    first = dialogue_regex(EMORY.speakers, EMORY.num_labels, 6, 12, target_label=3)
    assert first == dialogue_regex(EMORY.speakers, EMORY.num_labels, 6, 12, target_label=3)
    assert dialogue_json_schema(EMORY.speakers, 7, 6, 12) == dialogue_json_schema(EMORY.speakers, 7, 6, 12)


def test_regex_is_portable_to_outlines_interegular():
    """TGI compiles regex grammars with outlines, which parses them with ``interegular``: the same strings
    must parse there and accept/refuse the same dialogues (small limits keep its FSM construction quick)."""
    interegular = pytest.importorskip("interegular")
    speakers = ["Rachel Green", "Mr. Heckles", "Joey"]
    plain = interegular.parse_pattern(dialogue_regex(speakers, 7, 1, 2, max_utterance_chars=12)).to_fsm()
    assert plain.accepts("Rachel Green: Hi there. (1)\nMr. Heckles: Quiet! (6)")
    assert not plain.accepts("Mrx Heckles: Quiet! (6)")
    assert not plain.accepts("Joey: Hi. (7)")
    assert not plain.accepts("Joey: Hi (there). (1)")
    target = interegular.parse_pattern(dialogue_regex(speakers, 7, 1, 2, max_utterance_chars=6, target_label=3))
    fsm = target.to_fsm()
    assert fsm.accepts("Joey: Hi. (0)\nJoey: Oh. (3)") and fsm.accepts("Joey: Oh. (3)")
    assert not fsm.accepts("Joey: Hi. (0)\nJoey: Oh. (2)")
