"""Property tests: the dialogue grammar and the parser agree, and the parser is total on arbitrary text.

Grammar-valid strings come from two independent sources: hypothesis's ``from_regex`` over the grammar itself
(Python's ``re`` semantics, cross-checked against xgrammar), and walks of xgrammar's matcher that pick a
random allowed token at every step, as a constrained decoder does. What each string must parse to is read
with a line pattern written out here from the format's definition, not with the parser under test.
"""

from __future__ import annotations

import re

import pytest
import torch
import xgrammar
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from erc_synth.dataset_scripts.core.registry import BENCHMARKS, Benchmark, get_benchmark
from erc_synth.generation.grammar import LABEL_FORMATS, dialogue_regex
from erc_synth.generation.parsing import EXTRA_REASONS, REASONS, ParsedDialogue, Rejection, parse_dialogue

MIN_TURNS, MAX_TURNS, MAX_CHARS = 2, 4, 8
#: Characters ``str.splitlines()`` breaks at besides ``\n``: the grammar lets them into an utterance.
LINE_BREAKERS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
#: The walk's vocabulary: one character per token (so every string is reachable), the line breakers, a few
#: non-ASCII characters, and a stop token last.
VOCAB = [chr(code) for code in range(32, 127)] + ["\n", *LINE_BREAKERS, "é", "“", "\xa0", "</s>"]
STOP = len(VOCAB) - 1
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def label_tokens(benchmark: Benchmark, label_format: str) -> list[str]:
    return [str(i) for i in range(benchmark.num_labels)] if label_format == "number" else list(benchmark.labels)


def line_pattern(benchmark: Benchmark, label_format: str) -> re.Pattern[str]:
    """One dialogue line of the format, by its definition: speaker, utterance without newline or parentheses,
    and the label, after the utterance or (``word_first``) before the colon."""
    speakers = "|".join(re.escape(s) for s in benchmark.speakers)
    labels = "|".join(label_tokens(benchmark, label_format))
    if label_format == "word_first":
        return re.compile(rf"(?P<speaker>{speakers}) \((?P<label>{labels})\): (?P<utterance>[^\n()]+)")
    return re.compile(rf"(?P<speaker>{speakers}): (?P<utterance>[^\n()]+) \((?P<label>{labels})\)")


def expected_turns(text: str, benchmark: Benchmark, label_format: str) -> list[tuple[str, str, int]]:
    pattern, tokens = line_pattern(benchmark, label_format), label_tokens(benchmark, label_format)
    turns = []
    for line in text.split("\n"):
        match = pattern.fullmatch(line)
        assert match is not None, line  # every line of a grammar-valid string has the format's shape
        turns.append((match["speaker"], match["utterance"], tokens.index(match["label"])))
    return turns


def parsed_turns(text: str, benchmark: Benchmark) -> list[tuple[str, str, int]]:
    result = parse_dialogue(text, benchmark, min_turns=MIN_TURNS, max_turns=MAX_TURNS)
    assert isinstance(result, ParsedDialogue), (result, text)
    return list(zip(result.speakers, result.utterances, result.emotions, strict=True))


def is_a_dialogue(turns: list[tuple[str, str, int]]) -> bool:
    """What the parser checks beyond the line format (a regex cannot): two speakers, no looping utterance."""
    words = [" ".join(re.sub(r"[^\w\s]", " ", u.lower()).split()) for _, u, _ in turns]
    long_ones = [w for w in words if len(w.split()) >= 3]
    return len({s for s, _, _ in turns}) >= 2 and len(long_ones) == len(set(long_ones))


def grammar(benchmark: Benchmark, label_format: str, target: int | None = None) -> str:
    return dialogue_regex(benchmark.speakers, benchmark.num_labels, MIN_TURNS, MAX_TURNS, max_utterance_chars=MAX_CHARS,
                          target_label=target, label_format=label_format, label_names=benchmark.labels)


CASES = [(name, label_format) for name in sorted(BENCHMARKS) for label_format in LABEL_FORMATS]


@pytest.fixture(scope="module")
def compiler() -> xgrammar.GrammarCompiler:
    return xgrammar.GrammarCompiler(xgrammar.TokenizerInfo(VOCAB, stop_token_ids=[STOP]))


@pytest.mark.parametrize(("name", "label_format"), CASES)
@SETTINGS
@given(data=st.data())
def test_strings_the_regex_accepts_parse_to_the_same_turns(compiler, name, label_format, data):
    benchmark = get_benchmark(name)
    regex = grammar(benchmark, label_format)
    text = data.draw(st.from_regex(regex, fullmatch=True))
    matcher = xgrammar.GrammarMatcher(compiler.compile_regex(regex))
    assert matcher.accept_string(text) and matcher.is_completed()  # the decoder's engine agrees with ``re``
    turns = expected_turns(text, benchmark, label_format)
    assume(is_a_dialogue(turns))
    assert parsed_turns(text, benchmark) == turns


def walk(matcher: xgrammar.GrammarMatcher, data: st.DataObject) -> str:
    """Decode as a constrained sampler would: a random token among those the grammar allows, until stop.

    The stop token's text ("</s>") is plain text to the matcher's mask, as an unmarked special token would be;
    a real tokenizer's stop token is special, so it is drawn only where the grammar may end."""
    bitmask = xgrammar.allocate_token_bitmask(1, len(VOCAB))
    pieces: list[str] = []
    while True:
        matcher.fill_next_token_bitmask(bitmask)
        bits = bitmask[0].to(torch.int64) & 0xFFFFFFFF
        allowed = [token for token in range(len(VOCAB)) if (int(bits[token // 32]) >> (token % 32)) & 1
                   and (token != STOP or matcher.is_completed())]
        token = data.draw(st.sampled_from(allowed))
        assert matcher.accept_token(token)
        if token == STOP:
            return "".join(pieces)
        pieces.append(VOCAB[token])


@pytest.mark.parametrize(("name", "label_format"), CASES)
@SETTINGS
@given(data=st.data())
def test_what_a_constrained_decoder_can_write_parses_to_the_same_turns(compiler, name, label_format, data):
    benchmark = get_benchmark(name)
    target = data.draw(st.sampled_from([None, *range(benchmark.num_labels)]))
    text = walk(xgrammar.GrammarMatcher(compiler.compile_regex(grammar(benchmark, label_format, target))), data)
    turns = expected_turns(text, benchmark, label_format)
    assume(is_a_dialogue(turns))
    assert parsed_turns(text, benchmark) == turns
    assert target is None or target in {label for _, _, label in turns}


def test_a_line_breaker_inside_an_utterance_stays_in_it():
    """The case a small random model hit: ``\\x85`` (and the other ``splitlines`` breaks) mid-utterance."""
    meld = get_benchmark("meld")
    for char in LINE_BREAKERS:
        text = f"Ross: Hi{char}there (0)\nRachel: Oh. (1)"
        assert re.fullmatch(grammar(meld, "number"), text)
        assert parsed_turns(text, meld) == [("Ross", f"Hi{char}there", 0), ("Rachel", "Oh.", 1)]


_LABEL_SPELLINGS = sorted({spelling for b in BENCHMARKS.values() for spelling in b.spellings} | {"-1", "7", "99"})
_PIECES = st.one_of(
    st.text(max_size=12),
    st.sampled_from([": ", " (", ")", "(", "[", "]", "\n", "\r\n", "*", "**", "1. ", "- ", '"', "{", "}",
                     '"turns"', "emotion", "label: ", *LINE_BREAKERS]),
    st.sampled_from(sorted({s for b in BENCHMARKS.values() for s in b.speakers})),
    st.sampled_from(_LABEL_SPELLINGS),
)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.lists(_PIECES, max_size=40).map("".join)))
def test_the_parser_never_raises_and_never_returns_a_label_outside_the_set(name, text):
    benchmark = get_benchmark(name)
    result = parse_dialogue(text, benchmark, min_turns=1, max_turns=20, target_label=0)
    assert isinstance(result, ParsedDialogue | Rejection)
    emotions = result.emotions if isinstance(result, ParsedDialogue) else ()
    assert all(0 <= emotion < benchmark.num_labels for emotion in emotions)
    reason = result.reason if isinstance(result, Rejection) else "no_lines"
    assert reason in {*REASONS, *EXTRA_REASONS}
