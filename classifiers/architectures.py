"""The architecture registry: what a classifier architecture gives the trainer and the experiment runner.

Why a registry of import strings: the trainer (``classifiers.training``), the ``erc-synth train`` command and the
experiment grid only know architectures by name. Each architecture lives in its own module and exposes one
``ARCHITECTURE`` object; it is imported only when asked for, so a missing or broken optional architecture
(TODKAT, while it is being built) does not break the others, and ``erc-synth --help`` stays fast.

Contract for an architecture module (e.g. ``classifiers/todkat/__init__.py`` exposing ``ARCHITECTURE``)
------------------------------------------------------------------------------------------------------
``ARCHITECTURE = Architecture(name=..., example_level=..., build_model=..., prepare=..., collator=..., ...)``

* ``build_model(encoder, num_labels, label_names, **options) -> transformers.PreTrainedModel``
  ``encoder`` is a Hub id or a local folder with a pretrained encoder (config, weights, tokenizer).
  ``label_names`` are the benchmark's labels in canonical order (``Benchmark.labels``); set ``id2label`` /
  ``label2id`` from them. The model's ``forward(**batch)`` must return an output with ``loss`` (when ``labels``
  are in the batch) and ``logits``. ``save_pretrained`` / ``from_pretrained`` must round-trip.
* ``load_model(path) -> PreTrainedModel``: reload what ``build_model`` produced after ``save_pretrained``.
* ``prepare(dialogues, tokenizer, **options) -> datasets.DatasetDict``
  ``dialogues`` is a DatasetDict in the project's ``dialogues`` schema (``dialogue_id``, ``speakers``,
  ``utterances``, ``emotions`` as ClassLabel indices; ``-1`` = unlabelled context utterance; extra provenance
  columns may be present and must be ignored). Return one Dataset per split whose rows are model inputs
  (lists of ints, no padding) plus ``labels`` and a ``length`` column (an int used by the length-grouped
  sampler). Map ``-1`` to ``-100`` in ``labels``. Utterance-level architectures may drop examples whose target is
  unlabelled (they are never scored); the unlabelled utterance must still appear as context.
* ``collator(tokenizer, **options) -> callable(list[dict]) -> dict[str, Tensor]``
  Pads a batch dynamically (to the longest item of the batch, never to a fixed length) and builds masks.
  It receives every column ``prepare`` made (the trainer sets ``remove_unused_columns=False``), so it must
  ignore ``length`` and any column it does not use.
* ``trainer_class``: a ``transformers.Trainer`` subclass (``Trainer`` itself unless the architecture needs e.g.
  a custom ``compute_loss``).
* ``example_level``: ``"utterance"`` or ``"dialogue"``. How predictions map back to utterances for the metric:
  the trainer takes ``logits`` of shape ``(..., num_labels)`` and ``labels`` of shape ``(...)`` (the leading
  shapes equal), argmaxes the last axis, flattens both and drops positions whose label is ``-100``
  (:func:`utterance_pairs`). So an utterance-level model returns ``(batch, num_labels)`` with labels
  ``(batch,)``; a dialogue-level model such as TODKAT, whose examples are whole dialogues labelled at once,
  returns ``(batch, turns, num_labels)`` with labels ``(batch, turns)`` padded with ``-100`` (the Trainer's
  evaluation loop pads across batches with ``-100`` too, so padding turns never reach the metric). If that rule
  does not fit, give ``predictions_to_pairs(logits, labels) -> (predictions, references)`` instead.
* ``default_options``: per-architecture defaults (e.g. ``max_length``) that configs may override; the same
  ``options`` mapping is passed to ``build_model``, ``prepare`` and ``collator``, so each must accept and ignore
  keys it does not use (``**options``). ``extra_options`` names the options read without a default. Together
  they are the declared options: any other key is refused with the closest declared name, because a typo
  (``max_memory_utterance``) would otherwise train silently with the default.
* ``reference_hyperparameters``: the learning rate, batch size and epochs of the architecture's paper, used
  by ``classifiers/configs/paper.yaml`` and reported in model cards.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from erc_synth.dataset_scripts.core.errors import ErcSynthError

#: Label value ignored by the loss and by the metric (PyTorch's CrossEntropyLoss default).
IGNORE_INDEX: int = -100

#: Architecture name -> ``module:attribute`` resolved on first use.
ARCHITECTURES: Mapping[str, str] = MappingProxyType({
    "emoberta": "erc_synth.classifiers.emoberta:ARCHITECTURE",
    "compm": "erc_synth.classifiers.compm:ARCHITECTURE",
    "todkat": "erc_synth.classifiers.todkat:ARCHITECTURE",
})


def utterance_pairs(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Map ``(..., num_labels)`` logits and ``(...)`` labels to flat utterance-level (prediction, label) pairs.

    Positions labelled ``IGNORE_INDEX`` (unlabelled context utterances, padding turns) are dropped, so the metric
    only ever sees scored utterances.
    """
    logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits)
    labels = np.asarray(labels)
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits shape {logits.shape} does not match labels shape {labels.shape}")
    predictions = logits.argmax(axis=-1).reshape(-1)
    references = labels.reshape(-1)
    keep = references != IGNORE_INDEX
    return predictions[keep], references[keep]


@dataclass(frozen=True)
class Architecture:
    """Everything the trainer needs from one classifier architecture (see the module docstring)."""

    name: str
    build_model: Callable[..., Any]
    load_model: Callable[[str], Any]
    prepare: Callable[..., Any]
    collator: Callable[..., Callable[[list[dict]], dict]]
    trainer_class: type | None = None
    example_level: Literal["utterance", "dialogue"] = "utterance"
    predictions_to_pairs: Callable[[Any, Any], tuple[np.ndarray, np.ndarray]] = utterance_pairs
    default_options: Mapping[str, Any] = field(default_factory=dict)
    extra_options: tuple[str, ...] = ()
    reference_hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def declared_options(self) -> list[str]:
        return [*self.default_options, *self.extra_options]

    def check_options(self, overrides: Mapping[str, Any] | None, where: str = "") -> None:
        """Refuse option keys the architecture does not declare, naming the closest declared one."""
        import difflib

        declared = self.declared_options
        for key in overrides or {}:
            if key not in declared:
                match = difflib.get_close_matches(str(key), declared, n=1, cutoff=0.6)
                hint = f"; did you mean {match[0]!r}?" if match else ""
                raise ErcSynthError(f"{where}unknown {self.name} option {key!r}{hint} (declared: "
                                    f"{', '.join(declared)})")

    def options(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The architecture's default options updated with a config's or the command line's overrides."""
        self.check_options(overrides)
        merged = dict(self.default_options)
        merged.update(overrides or {})
        return merged

    def get_trainer_class(self) -> type:
        """The Trainer subclass to use (``transformers.Trainer`` when the architecture needs no custom one)."""
        if self.trainer_class is not None:
            return self.trainer_class
        from transformers import Trainer

        return Trainer


def get_architecture(name: str) -> Architecture:
    """Resolve an architecture by name; unknown or not-yet-available ones raise a one-line user error."""
    target = ARCHITECTURES.get(name.lower())
    if target is None:
        raise ErcSynthError(f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ErcSynthError(
                f"architecture {name!r} is registered but its module {module_name} is not available yet"
            ) from None
        raise
    architecture = getattr(module, attribute, None)
    if not isinstance(architecture, Architecture):
        raise ErcSynthError(f"architecture {name!r}: {target} does not define an Architecture")
    return architecture
