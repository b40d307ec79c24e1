"""The ``llm`` judge: a generation backend asked, utterance by utterance, for the number of the emotion.

Spec: ``llm:BACKEND[:MODEL][@URL[,URL...]][#CHAT_FORMAT]``: ``llm:transformers`` (the embedded SmolLM2),
``llm:transformers:DIR``, ``llm:tgi@http://host:8080#chatml``, ``llm:openai:MODEL@http://host:8000``
(``#CHAT_FORMAT`` is generation's ``--chat-format``, for a TGI model whose prompt format cannot be told).
Each labelled utterance becomes one request showing its whole dialogue with numbered lines and asking which
emotion line N expresses, with the benchmark's labels numbered; where the backend enforces grammars the answer is
constrained to the label numbers.

Why a RUN_DIR like a generation run: the requests can be many and slow, so they go through generation's request
pool (``generation.request_pool``), the machinery a generation run uses: every answer is stored durably
(``RunStore``: fsynced JSONL) before it counts, server faults are retried with backoff, and the audit resumes
after any interruption. Request seeds are ``derive_seed(seed, utterance index, attempt)``, so a resumed audit
equals an uninterrupted one. An answer that is not a label number is stored as rejected with its reason and
retried with the next attempt's seed; after ``MAX_ATTEMPTS`` the utterance is judged unknown (no label is
guessed) and left out of the statistics.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from erc_synth.dataset_scripts.core.registry import UNLABELLED, Benchmark

from .judges import JudgeError, default_cache_dir

LLM_SPEC = "llm:BACKEND[:MODEL][@URL[,URL...]][#CHAT_FORMAT]"
PROMPT_VERSION = "judge-v1"
MAX_ATTEMPTS = 3
SYSTEM = "You label the emotion of one line of a conversation. Answer with the emotion's number only."
USER = ("Conversation ({setting}):\n{lines}\n\nWhich emotion does line {line} ({speaker}) express?\n{choices}\n"
        "Answer with the number of the emotion.")
_NUMBER = re.compile(r"\s*(\d+)\s*\.?\s*")


def judge_sampling():
    """Nearly greedy, one short answer. Not temperature 0: the backends refuse it (every retry of a rejected
    answer would repeat it); 0.1 keeps the likeliest label number while a retry's new seed can still differ."""
    from erc_synth.generation.backends.base import SamplingParams

    return SamplingParams(temperature=0.1, top_p=1.0, top_k=50, typical_p=1.0, repetition_penalty=1.0,
                          max_new_tokens=16, stop=("\n",))


@dataclass(frozen=True)
class LlmJudgeSpec:
    backend: str
    model: str | None
    endpoints: tuple[str, ...]
    chat_format: str = "auto"

    @classmethod
    def parse(cls, spec: str) -> LlmJudgeSpec:
        from erc_synth.generation.backends.factory import BACKENDS

        rest, _, chat_format = spec.removeprefix("llm:").partition("#")
        body, _, urls = rest.partition("@")
        backend, _, model = body.partition(":")
        if backend not in BACKENDS:
            raise JudgeError(f"judge {spec}: unknown backend {backend!r}; use {LLM_SPEC} "
                             f"with BACKEND one of {', '.join(BACKENDS)}")
        endpoints = tuple(u for u in urls.split(",") if u)
        if backend in ("tgi", "openai") and not endpoints:
            raise JudgeError(f"judge {spec}: backend {backend} needs a server URL (llm:{backend}@http://HOST:PORT)")
        return cls(backend, model or None, endpoints, chat_format or "auto")


def judge_messages(benchmark: Benchmark, speakers, utterances, turn: int) -> tuple[dict[str, str], ...]:
    """The chat messages asking for the label of ``turn`` (1-based line numbers, as a reader counts)."""
    lines = "\n".join(f"{i + 1}. {s}: {u}" for i, (s, u) in enumerate(zip(speakers, utterances, strict=True)))
    choices = "\n".join(f"{i} = {name}" for i, name in enumerate(benchmark.labels))
    user = USER.format(setting=benchmark.setting, lines=lines, line=turn + 1, speaker=speakers[turn], choices=choices)
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})


def label_grammar(kind: str, num_labels: int):
    """The label numbers as the backend's grammar shape (a regex alternation, or a one-field JSON schema)."""
    from erc_synth.generation.backends.base import Grammar

    if kind == "json_schema":
        return Grammar("json_schema", {"type": "object", "required": ["label"], "additionalProperties": False,
                                       "properties": {"label": {"type": "integer", "enum": list(range(num_labels))}}})
    return Grammar("regex", "(" + "|".join(str(i) for i in range(num_labels)) + ")")


def parse_label(text: str, num_labels: int) -> tuple[int | None, str | None]:
    """``(label, None)`` for a label number (bare, or ``{"label": N}``), else ``(None, reason)``."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped).get("label")
        except (json.JSONDecodeError, AttributeError):
            return None, "not_json"
        if not isinstance(value, int) or isinstance(value, bool):
            return None, "not_a_label_number"
    else:
        match = _NUMBER.fullmatch(stripped)
        if not match:
            return None, "not_a_label_number"
        value = int(match.group(1))
    if not 0 <= value < num_labels:
        return None, "label_out_of_range"
    return value, None


@dataclass
class _Item:
    index: int
    split: str
    dialogue: int
    turn: int
    messages: tuple[dict[str, str], ...]


class _LabelQuestions:
    """The judge's ``RequestSource`` for the request pool: index i asks for the label of utterance ``items[i]``."""

    def __init__(self, items: list[_Item], seed: int, grammar, num_labels: int) -> None:
        self.items = items
        self.size = len(items)
        self.max_attempts = MAX_ATTEMPTS
        self.seed = seed
        self.grammar = grammar
        self.num_labels = num_labels
        self.params = judge_sampling()

    def groups(self) -> list[range]:
        return [range(self.size)]

    def restore(self, record) -> None:
        """Nothing to restore: a question depends on its index and attempt only."""

    def begin_group(self, todo, group, accepted) -> None:
        """Nothing to choose: every question is known before the audit starts."""

    def request(self, index: int, attempt: int):
        from erc_synth.generation.backends.base import GenerationRequest
        from erc_synth.generation.seeds import derive_seed

        return GenerationRequest(messages=self.items[index].messages, params=self.params, grammar=self.grammar,
                                 seed=derive_seed(self.seed, index, attempt))

    def assess(self, index: int, attempt: int, request, result) -> dict[str, Any]:
        item = self.items[index]
        label, reason = parse_label(result.text, self.num_labels)
        return {"index": index, "attempt": attempt, "seed": request.seed,
                "status": "accepted" if reason is None else "rejected", "reason": reason, "detail": None,
                "raw_text": result.text, "emotions": [label] if label is not None else None,
                "finish_reason": result.finish_reason, "generated_tokens": result.generated_tokens,
                "split": item.split, "dialogue": item.dialogue, "turn": item.turn}


@dataclass
class LlmJudge:
    """A backend judge with its RUN_DIR; ``predict`` asks for every labelled utterance not yet answered."""

    id: str
    spec: LlmJudgeSpec
    benchmark: Benchmark
    seed: int
    cache_dir: Path
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "kind": "llm", "benchmark": self.benchmark.name, "architecture": self.spec.backend,
                "model": self.spec.model, "weighted_f1": None,
                "weighted_f1_source": "not measured for an llm judge", **self.details}

    def _items(self, dialogues: Mapping[str, Any]) -> list[_Item]:
        items = []
        for split, dataset in dialogues.items():
            for d, (speakers, utterances, emotions) in enumerate(zip(dataset["speakers"], dataset["utterances"],
                                                                     dataset["emotions"], strict=True)):
                for turn, label in enumerate(emotions):
                    if label != UNLABELLED:
                        items.append(_Item(len(items), split, d, turn,
                                           judge_messages(self.benchmark, speakers, utterances, turn)))
        return items

    def _settings(self, items: list[_Item], grammar_kind: str | None) -> dict[str, Any]:
        fingerprint = hashlib.sha256(json.dumps([i.messages for i in items]).encode()).hexdigest()
        return {"kind": "audit-llm-judge", "benchmark": self.benchmark.name, "seed": self.seed,
                "num_dialogues": len(items), "backend": self.spec.backend, "model": self.spec.model,
                "chat_format": self.spec.chat_format,
                "max_attempts": MAX_ATTEMPTS, "grammar": grammar_kind, "sampling": judge_sampling().to_dict(),
                "prompt_version": PROMPT_VERSION, "prompt_templates": {"system": SYSTEM, "user": USER},
                "requests_fingerprint": fingerprint}

    def predict(self, dialogues: Mapping[str, Any]) -> dict[str, list[np.ndarray]]:
        """Per split and dialogue, one-hot rows of the judge's answers; all-zero rows where it has none."""
        return asyncio.run(self._predict(dialogues))

    async def _predict(self, dialogues: Mapping[str, Any]) -> dict[str, list[np.ndarray]]:
        from erc_synth.dataset_scripts.run_store import RunStore
        from erc_synth.generation.backends.factory import create_backend

        items = self._items(dialogues)
        backend = create_backend(backend=self.spec.backend, endpoints=list(self.spec.endpoints), model=self.spec.model,
                                 chat_format=self.spec.chat_format)
        store = None
        try:
            info = await backend.info()
            grammar_kind = backend.grammar_kind if backend.supports_grammar else None
            settings = self._settings(items, grammar_kind)
            key = hashlib.sha256(json.dumps({**settings, "endpoints": None}, sort_keys=True).encode()).hexdigest()
            run_dir = self.cache_dir / "llm" / f"{self.benchmark.name}-{key[:16]}"
            store = RunStore.create_or_open(run_dir, settings, {"model_id": info.model_id,
                                                                "model_sha": info.model_sha,
                                                                "server_version": info.server_version})
            self.details.update({"run_dir": str(run_dir), "grammar": grammar_kind})
            answers, retried = await _answer_all(backend, store, items, self.seed, grammar_kind,
                                                 self.benchmark.num_labels, self.benchmark.name,
                                                 len(self.spec.endpoints))
            self.details["server_faults_retried"] = retried
        finally:
            if store is not None:
                store.close()  # the writer lock of the judge's cache
            await backend.aclose()
        self.details["unknown"] = sum(1 for i in items if i.index not in answers)
        out = {split: [np.zeros((len(e), self.benchmark.num_labels), dtype=np.float32) for e in dataset["emotions"]]
               for split, dataset in dialogues.items()}
        for item in items:
            if item.index in answers:
                out[item.split][item.dialogue][item.turn, answers[item.index]] = 1.0
        return out


async def _answer_all(backend, store, items: list[_Item], seed: int, grammar_kind: str | None,
                      num_labels: int, benchmark: str, endpoints: int) -> tuple[dict[int, int], int]:
    """Ask until every item has an accepted answer or ``MAX_ATTEMPTS`` rejections; returns index -> label, and
    the number of server faults retried on the way."""
    from tqdm.auto import tqdm

    from erc_synth.generation.request_pool import RequestPool, default_concurrency

    grammar = label_grammar(grammar_kind, num_labels) if grammar_kind else None
    source = _LabelQuestions(items, seed, grammar, num_labels)
    bar = tqdm(total=len(items), unit="utt", desc=f"llm judge {benchmark}", disable=None, dynamic_ncols=True)
    pool = RequestPool(source, store, backend, concurrency=default_concurrency(backend, endpoints), progress_bar=bar)
    await pool.run()
    if pool.error:
        raise JudgeError(f"llm judge: {pool.error}; rerun the audit to resume, answers so far are kept in "
                         f"{store.run_dir}")
    return {index: emotions[0] for index, emotions in pool.accepted.items()}, pool.retried


def load_llm_judge(spec: str, benchmark: Benchmark, *, seed: int, cache_dir: Path | None) -> LlmJudge:
    return LlmJudge(id=spec, spec=LlmJudgeSpec.parse(spec), benchmark=benchmark, seed=seed,
                    cache_dir=Path(cache_dir) if cache_dir else default_cache_dir())
