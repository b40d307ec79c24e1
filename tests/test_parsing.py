"""The parser against a committed corpus of real-LLM-style outputs, each with its expected verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.generation.backends.base import GenerationResult
from erc_synth.generation.parsing import EXTRA_REASONS, REASONS, ParsedDialogue, Rejection, parse_dialogue
from erc_synth.generation.validation import judge, make_record

CORPUS = Path(__file__).parent / "fixtures" / "llm_outputs"
CASES = json.loads((CORPUS / "cases.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case_gets_its_expected_verdict(name: str) -> None:
    case = CASES[name]
    verdict = parse_dialogue((CORPUS / name).read_text(encoding="utf-8"), get_benchmark(case["benchmark"]),
                             min_turns=case["min_turns"], max_turns=case["max_turns"],
                             target_label=case.get("target_label"))
    got = verdict.reason if isinstance(verdict, Rejection) else None
    assert got == case["expected"], getattr(verdict, "detail", verdict)


def test_corpus_covers_every_parser_reason() -> None:
    assert {c["expected"] for c in CASES.values()} - {None} == set(REASONS)
    assert all((CORPUS / name).is_file() for name in CASES)


def test_tolerated_quirks_keep_text_and_labels_exactly() -> None:
    verdict = parse_dialogue((CORPUS / "ok_numbered_bold_quotes.txt").read_text(), get_benchmark("meld"),
                             min_turns=3, max_turns=8)
    assert verdict == ParsedDialogue(speakers=("Joey", "Rachel", "Monica"),
                                     utterances=("How you doin'?", "Oh my God.", "Stop it."),
                                     emotions=(1, 2, 3), ignored_lines=2)


def test_label_words_map_to_indices_and_full_names_to_registry_spelling() -> None:
    words = parse_dialogue((CORPUS / "ok_label_words.txt").read_text(), get_benchmark("meld"), min_turns=3,
                           max_turns=8)
    assert words.emotions == (6, 0, 2)
    names = parse_dialogue((CORPUS / "ok_emorynlp_first_names.txt").read_text(), get_benchmark("emorynlp"),
                           min_turns=3, max_turns=8)
    assert names.speakers == ("Rachel Green", "Ross Geller", "Gunther")


def test_json_shape_reads_like_the_line_format() -> None:
    verdict = parse_dialogue((CORPUS / "ok_json_fenced.txt").read_text(), get_benchmark("meld"), min_turns=3,
                             max_turns=8)
    assert verdict.speakers == ("Ross", "Rachel", "Joey") and verdict.emotions == (3, 5, 0)


def test_short_interjections_may_repeat_without_counting_as_a_loop() -> None:
    text = "Joey: What? (2)\nRoss: Nothing at all, really. (0)\nJoey: What? (2)\n"
    assert isinstance(parse_dialogue(text, get_benchmark("meld"), min_turns=3, max_turns=8), ParsedDialogue)


def test_cut_off_output_is_counted_as_truncated_and_recorded_with_raw_text() -> None:
    text = "Joey: How you doin'? (1)\nRachel: Joey, not n"
    result = GenerationResult(text=text, finish_reason="length", generated_tokens=20)
    verdict = judge(result, get_benchmark("meld"), turns=(2, 8), target_label=None)
    assert verdict.reason == "truncated" and "missing_label" in verdict.detail
    record = make_record(index=3, attempt=1, seed=99, target_label=None, result=result, verdict=verdict)
    assert record["status"] == "rejected" and record["raw_text"] == text and record["emotions"] is None
    # the same text ended by EOS is the model's formatting fault, not truncation
    eos = judge(GenerationResult(text=text, finish_reason="eos_token"), get_benchmark("meld"), turns=(2, 8),
                target_label=None)
    assert eos.reason == "missing_label"
    assert "truncated" in EXTRA_REASONS


def test_label_before_the_utterance_reads_like_the_label_after_it() -> None:
    meld = get_benchmark("meld")
    first = parse_dialogue("Ross (sadness): I miss her [sighs].\nRachel (joy): We're back!", meld, min_turns=2,
                           max_turns=8)
    after = parse_dialogue("Ross: I miss her [sighs]. (sadness)\nRachel: We're back! (1)", meld, min_turns=2,
                           max_turns=8)
    assert first == after
    assert first.utterances == ("I miss her [sighs].", "We're back!") and first.emotions == (4, 1)


def test_a_labelled_speaker_without_words_is_an_empty_utterance_not_prose() -> None:
    verdict = parse_dialogue("Ross (sadness): I miss her.\nRachel (joy):", get_benchmark("meld"), min_turns=1,
                             max_turns=8)
    assert (verdict.reason, verdict.line) == ("empty_utterance", 2)


def test_lines_end_at_newline_only() -> None:
    """``\\r\\n`` endings still read; a ``\\u2028`` or ``\\x85`` inside an utterance stays in it (grammar-valid)."""
    meld = get_benchmark("meld")
    crlf = parse_dialogue("Ross: Hi. (0)\r\nRachel: Oh. (1)\r\n", meld, min_turns=2, max_turns=8)
    assert crlf.utterances == ("Hi.", "Oh.")
    inner = parse_dialogue("Ross: Hi\u2028there. (0)\nRachel: Oh\x85no. (1)", meld, min_turns=2, max_turns=8)
    assert inner.utterances == ("Hi\u2028there.", "Oh\x85no.") and inner.emotions == (0, 1)
