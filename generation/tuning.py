"""``tune-generator``: LoRA fine-tuning of the generator on a benchmark's train split, with transformers' Trainer.

Why LoRA: the embedded SmolLM2-135M learns the benchmark's register and label-first line form from a few hundred
dialogues, and a low-rank adapter trains faster than the whole model (``benchmarks/bench_tune_generator.py``).
The adapter is merged into the base weights for the output, so ``generate --model GEN_DIR`` loads it like
any causal LM folder; the adapter alone is kept beside it (``adapter/``).

Why a cache key: tuning takes minutes to hours, so GEN_DIR's manifest holds a sha256 of the base model's weights,
the tuning set (its rendered text) and the settings; rerunning with the same inputs does nothing and says so.

Why checkpoints outside GEN_DIR: a SIGKILL must lose at most ``save_steps`` steps, and the rerun resumes from
the last complete checkpoint through the Trainer (model, optimizer, scheduler and RNG states), which gives the
same adapter as an uninterrupted run. They live in ``<GEN_DIR>.tune-work/`` beside GEN_DIR and are removed once
GEN_DIR is complete. Nothing of the real text is written anywhere: the tokenised examples are a list in memory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.errors import SettingError
from erc_synth.dataset_scripts.core.registry import Benchmark

from .backends.embedded import dequantised_model_folder, embedded_model_path, file_sha256, is_embedded
from .tuned_model import TUNE_MANIFEST, licence_statement, read_tune_manifest
from .tuning_data import TuneSet

#: Bumped when the training recipe changes what a given cache key produces.
RECIPE_VERSION = 1
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf")
MAX_STEPS = 10**9


def _integer_in(low: int, high: int, note: str = "") -> tuple[Callable[[Any], bool], str]:
    return ((lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high),
            f"an integer in [{low}, {high}]{note}")


def _number_in(low: float, high: float, *, low_open: bool, high_open: bool) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            return False
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    return ok, f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


_STEPS = _integer_in(1, MAX_STEPS)
_DIALOGUES = _integer_in(1, 10_000_000)
#: One rule per tuning setting: (accepts the value, what a valid value is). Every count and size has a ceiling,
#: so a typo such as ``10**30`` is refused before a model is loaded; the ``tune-generator`` flags share them.
TUNE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "method": ((lambda v: v in ("lora", "full")), "lora or full"),
    "lora_r": _integer_in(1, 4_096),
    "lora_alpha": _integer_in(1, 65_536),
    "lora_dropout": _number_in(0, 1, low_open=False, high_open=True),
    "learning_rate": _number_in(0, 10, low_open=True, high_open=False),
    "epochs": _number_in(0, 10_000, low_open=True, high_open=False),
    "max_steps": ((lambda v: v == -1 or _STEPS[0](v)), f"{_STEPS[1]}, or -1 (the epochs decide)"),
    "batch_size": _integer_in(1, 65_536),
    "max_length": _integer_in(16, 131_072, " tokens"),
    "seed": _integer_in(0, 2**32 - 1),
    "save_steps": _STEPS,
    "max_dialogues": ((lambda v: v is None or _DIALOGUES[0](v)), _DIALOGUES[1]),
}


def check_tune_setting(name: str, value: Any) -> None:
    """Refuse ``value`` for the tuning setting ``name`` (``TUNE_RULES``) with a ``SettingError`` naming it."""
    ok, valid = TUNE_RULES[name]
    if not ok(value):
        raise SettingError(name, f"must be {valid}, got {value!r}")


@dataclass(frozen=True)
class TuneSettings:
    """Everything that changes the tuned weights (all of it is part of the cache key)."""

    method: str = "lora"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 4
    max_length: int = 512
    seed: int = 13

    def check(self) -> None:
        """Every setting in its range (``TUNE_RULES``); the first one out of it is a ``SettingError`` naming it."""
        for name in TUNE_RULES:
            if hasattr(self, name):
                check_tune_setting(name, getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        if self.method == "full":
            for key in ("lora_r", "lora_alpha", "lora_dropout", "target_modules"):
                data.pop(key)
        return data


@dataclass(frozen=True)
class BaseModel:
    """The model being tuned: where its weights are, what runs call it, and the sha256 of its weights."""

    folder: Path
    given: str
    sha256: str


@dataclass(frozen=True)
class TuneResult:
    out: Path
    manifest: dict[str, Any]
    up_to_date: bool


def resolve_base(base_model: str | None) -> BaseModel:
    """The embedded SmolLM2 (its dequantised cache, named by the GGUF's sha256) or a causal LM folder."""
    if base_model is None or is_embedded(base_model):
        return BaseModel(dequantised_model_folder(), "embedded:smollm2-135m-instruct",
                         file_sha256(embedded_model_path()))
    folder = Path(base_model)
    if not (folder / "config.json").is_file():
        raise SettingError("base_model", f"{base_model}: not a model folder (no config.json)")
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise SettingError("base_model", f"{base_model}: unreadable config.json ({' '.join(str(exc).split())})") \
            from None
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise SettingError("base_model", f"{base_model}: model type {config.model_type!r} is not a causal LM")
    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    heads = list(config.architectures or ())
    if heads and not causal.intersection(heads):  # e.g. a classifier saved from a type that also has an LM head
        raise SettingError("base_model", f"{base_model}: its weights are a {heads[0]}, not a causal LM")
    weights = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if not weights:
        raise SettingError("base_model", f"{base_model}: no weight files (*.safetensors, *.bin) in the folder")
    digest = hashlib.sha256()
    for path in weights:
        digest.update(path.name.encode() + b"\0" + file_sha256(path).encode())
    return BaseModel(folder, str(base_model), digest.hexdigest())


def cache_key(base: BaseModel, tune_set: TuneSet, settings: TuneSettings, chat_format: str) -> str:
    """sha256 of the base weights, the tuning set's rendered text and ids, and the settings."""
    payload = {"recipe": RECIPE_VERSION, "base_sha256": base.sha256, "data": tune_set.content_sha256(),
               "ids": tune_set.ids_sha256(), "settings": settings.to_dict(), "chat_format": chat_format}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def tokenise(tune_set: TuneSet, tokenizer: Any, chat_format: Any, max_length: int) -> tuple[list[dict], int]:
    """Input ids and labels per example (the prompt's tokens masked with -100), and how many were too long.

    The prompt is rendered by the chat format generation uses, so the model learns to answer the exact string it
    will be given; the answer ends with the EOS token, where the grammar lets generation stop.
    """
    rows, too_long = [], 0
    for example in tune_set.examples:
        prompt = chat_format.render(example.messages)
        prompt_ids = tokenizer(prompt, add_special_tokens=chat_format.add_special_tokens)["input_ids"]
        answer_ids = tokenizer(example.answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = prompt_ids + answer_ids
        if len(ids) > max_length:
            too_long += 1
            continue
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids),
                     "labels": [-100] * len(prompt_ids) + answer_ids})
    return rows, too_long


def _complete_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints the Trainer finished writing (``trainer_state.json`` is written last), oldest first."""
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    found.sort(key=lambda p: int(p.name.split("-")[-1]))
    complete = [p for p in found if (p / "trainer_state.json").is_file()]
    for broken in set(found) - set(complete):  # cut off mid-write by a kill: never resume from it
        shutil.rmtree(broken, ignore_errors=True)
    return complete


def _work_dir(out: Path, key: str) -> Path:
    return out.parent / f"{out.name}.tune-work" / key[:16]


def tune_generator(tune_set: TuneSet, out: str | Path, *, base_model: str | None = None,
                   settings: TuneSettings | None = None, save_steps: int = 50, device: str = "auto",
                   log: Any = print) -> TuneResult:
    """Tune a generator on ``tune_set`` into ``out`` (GEN_DIR); a no-op when ``out`` already holds this result."""
    from transformers import AutoTokenizer

    from .chat_format import resolve_chat_format

    settings = settings or TuneSettings()
    settings.check()
    check_tune_setting("save_steps", save_steps)
    out = Path(out)
    base = resolve_base(base_model)
    tokenizer = AutoTokenizer.from_pretrained(base.folder)
    chat_format = resolve_chat_format("auto", base.given, tokenizer)
    key = cache_key(base, tune_set, settings, chat_format.name)
    if out.exists():
        known = read_tune_manifest(out) if (out / TUNE_MANIFEST).is_file() else None
        if known is not None and known.get("cache_key") == key:
            return TuneResult(out, known, up_to_date=True)
        raise SettingError("out", f"{out} exists and is not a generator tuned with these inputs; choose a new "
                                  "folder or remove it")
    rows, too_long = tokenise(tune_set, tokenizer, chat_format, settings.max_length)
    if not rows:
        raise SettingError("max_length", f"{settings.max_length}: every example is longer; raise it")
    work = _work_dir(out, key)
    work.mkdir(parents=True, exist_ok=True)
    model = prepare_model(base, settings)
    state = _train(model, tokenizer, rows, settings, work / "checkpoints", save_steps, device, log)
    manifest = _manifest(base, tune_set, settings, chat_format.name, key, len(rows), too_long, state)
    _publish(out, model, tokenizer, settings, manifest)
    shutil.rmtree(work.parent, ignore_errors=True)
    return TuneResult(out, read_tune_manifest(out), up_to_date=False)


def prepare_model(base: BaseModel, settings: TuneSettings) -> Any:
    """The base model in float32, wrapped in a LoRA adapter for ``method="lora"`` (seeded: same adapter init)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(settings.seed)
    model = AutoModelForCausalLM.from_pretrained(base.folder, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None and _is_dequantised_gguf(model):
        # the embedded cache keeps the GGUF's quantization_config, but its weights are plain float32 tensors:
        # without the marker the Trainer trains them (and the merged model saves) like any float32 model
        model.hf_quantizer = None
        model.is_quantized = False
        del model.config.quantization_config
    if settings.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=settings.lora_r,
                                                 lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                                                 target_modules=list(settings.target_modules)))
    return model


def _is_dequantised_gguf(model: Any) -> bool:
    import torch

    method = getattr(getattr(model.config, "quantization_config", None), "quant_method", None)
    method = method.get("quant_method") if isinstance(method, dict) else method
    return str(getattr(method, "value", method)).lower() == "gguf" and all(
        p.dtype == torch.float32 for p in model.parameters())


def make_trainer(model: Any, tokenizer: Any, rows: list[dict], settings: TuneSettings, checkpoints: Path,
                 save_steps: int, device: str, collator: Any = None) -> Any:
    """The Trainer every tuning run uses (``benchmarks/bench_tune_generator.py`` times the same one).

    ``full_determinism`` and the seeds make a resumed run reproduce an uninterrupted one; logging every step
    gives the manifest its first and last loss."""
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    args = TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, num_train_epochs=settings.epochs, max_steps=settings.max_steps,
        lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, seed=settings.seed, data_seed=settings.seed,
        logging_steps=1, save_strategy="steps", save_steps=save_steps, save_total_limit=2, report_to=[],
        disable_tqdm=True, dataloader_num_workers=0, use_cpu=device == "cpu", full_determinism=True,
    )
    collator = collator or DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    return Trainer(model=model, args=args, train_dataset=rows, data_collator=collator)


def _train(model: Any, tokenizer: Any, rows: list[dict], settings: TuneSettings, checkpoints: Path,
           save_steps: int, device: str, log: Any) -> dict[str, Any]:
    """Run (or resume) the Trainer; returns the facts the manifest records about what was trained."""
    trainer = make_trainer(model, tokenizer, rows, settings, checkpoints, save_steps, device)
    done = _complete_checkpoints(checkpoints)
    if done:
        log(f"resuming from {done[-1].name}")
    output = trainer.train(resume_from_checkpoint=str(done[-1]) if done else None)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"steps": trainer.state.global_step, "epochs": round(float(trainer.state.epoch or 0), 4),
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "train_loss": output.training_loss, "resumed_from_step": int(done[-1].name.split("-")[-1]) if done else 0}


def _manifest(base: BaseModel, tune_set: TuneSet, settings: TuneSettings, chat_format: str, key: str,
              examples: int, too_long: int, state: dict[str, Any]) -> dict[str, Any]:
    import peft
    import transformers

    data = tune_set.summary()
    data["examples"] = examples
    if too_long:
        data["left_out_by_reason"] = {**data["left_out_by_reason"], "too_long": too_long}
    return {
        "format_version": 1, "kind": "erc-synth tuned generator", "cache_key": key,
        "base_model": base.given, "base_model_sha256": base.sha256, "benchmark": tune_set.benchmark.name,
        "train_split": "train", "data": data, "settings": settings.to_dict(), "chat_format": chat_format,
        "output": "merged" if settings.method == "lora" else "full",
        "training": state, "licence": licence_statement(tune_set.benchmark),
        "versions": {"transformers": transformers.__version__, "peft": peft.__version__},
    }


def _publish(out: Path, model: Any, tokenizer: Any, settings: TuneSettings, manifest: dict[str, Any]) -> None:
    """Write the merged model, the adapter and the manifest into a staging sibling, then rename it to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        if settings.method == "lora":
            model.save_pretrained(staging / "adapter")
            model = model.merge_and_unload()
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / TUNE_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp makes it private; GEN_DIR is an ordinary model folder
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def describe(result: TuneResult, benchmark: Benchmark) -> str:
    """The command's closing line."""
    if result.up_to_date:
        return (f"{result.out} is up to date: a generator tuned on the {benchmark.name} train split with these "
                "inputs (same base weights, data and settings); nothing to do")
    training = result.manifest["training"]
    return (f"tuned {result.manifest['base_model']} on {result.manifest['data']['examples']} {benchmark.name} train "
            f"dialogues: {training['steps']} steps, loss {training['first_loss']:.3f} -> {training['last_loss']:.3f}; "
            f"wrote {result.out} (use it with `erc-synth generate --model {result.out}`)")
