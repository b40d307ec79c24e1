"""Turn one backend result into the run record the store keeps: accepted with its dialogue, or rejected with why.

Why separate from parsing: the parser sees text only; this layer also knows how generation ended, so that an
output cut off at ``max_new_tokens`` is counted as ``truncated`` (raise the token budget) rather than under
whichever line happened to be cut (which would blame the model's formatting).
"""

from __future__ import annotations

from typing import Any

from erc_synth.dataset_scripts.core.registry import Benchmark

from .backends.base import GenerationResult
from .parsing import ParsedDialogue, Rejection, parse_dialogue

#: Balanced mode's target policies (``GenerationConfig.target_policy``): "force" (grammar and parser), "check"
#: (parser only) and "prompt" (named in the prompt only, as in the reference study; kept and counted).
TARGET_POLICIES: tuple[str, ...] = ("prompt", "check", "force")

#: Parser reasons that a cut-off output produces; with finish_reason "length" they become "truncated".
_CUT_OFF_SYMPTOMS = frozenset({"missing_label", "too_few_turns", "invalid_json", "no_lines", "empty_utterance"})


def judge(result: GenerationResult, benchmark: Benchmark, *, turns: tuple[int, int],
          target_label: int | None) -> ParsedDialogue | Rejection:
    """Parse a result; a parse failure on an output stopped by the token limit is reported as truncated."""
    parsed = parse_dialogue(result.text, benchmark, min_turns=turns[0], max_turns=turns[1],
                            target_label=target_label)
    if isinstance(parsed, Rejection) and result.finish_reason == "length" and parsed.reason in _CUT_OFF_SYMPTOMS:
        return Rejection("truncated", f"stopped at the token limit ({parsed.reason}: {parsed.detail})", parsed.line)
    return parsed


def make_record(*, index: int, attempt: int, seed: int, target_label: int | None, result: GenerationResult,
                verdict: ParsedDialogue | Rejection) -> dict[str, Any]:
    """The ``records.jsonl`` line of one finished request (fields documented in ``run_store``).

    ``target_present`` says whether an accepted balanced dialogue has an utterance labelled with its target
    (None for natural mode and rejections), so that the realised share can be reported under any target policy.
    """
    record: dict[str, Any] = {
        "index": index,
        "attempt": attempt,
        "seed": seed,
        "target_emotion": target_label,
        "raw_text": result.text,
        "finish_reason": result.finish_reason,
        "generated_tokens": result.generated_tokens,
    }
    if isinstance(verdict, Rejection):
        record.update(status="rejected", reason=verdict.reason, detail=verdict.detail,
                      speakers=None, utterances=None, emotions=None)
    else:
        record.update(status="accepted", reason=None, detail=None, speakers=list(verdict.speakers),
                      utterances=list(verdict.utterances), emotions=list(verdict.emotions))
    record["target_present"] = (target_label in verdict.emotions
                                if target_label is not None and not isinstance(verdict, Rejection) else None)
    return record
