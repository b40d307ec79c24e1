"""Pre-training the topic layer by masked LM on a dataset's utterances (``erc-synth train-topics``).

Why per dataset: the paper learns the latent topics of each corpus before the classifier is trained, so the
topic vectors describe that corpus's themes. The result is an ordinary checkpoint folder (config, weights,
tokenizer) that ``--encoder`` accepts; the classifier then reuses its encoder and topic layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .settings import TopicTrainingSettings
from .topic import TopicMaskedLM


def train_topics(encoder: str, texts: Sequence[str], out_dir: str | Path, settings: TopicTrainingSettings) -> dict:
    """Train the topic-augmented MLM on ``texts`` and save it (with the tokenizer) to ``out_dir``.

    Returns the Trainer's training metrics (``train_loss`` etc.).
    """
    from datasets import Dataset
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling, Trainer, TrainingArguments, set_seed

    from erc_synth.dataset_scripts.core.errors import ErcSynthError

    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ErcSynthError("no utterance text to pre-train the topic layer on")
    set_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    if tokenizer.mask_token is None:
        raise ErcSynthError(f"encoder {encoder!r} has no mask token; masked-LM pre-training needs one")
    model = TopicMaskedLM.from_encoder(
        encoder, topic_layer=settings.topic_layer, topic_dim=settings.topic_dim,
        topic_inner_dim=settings.topic_inner_dim, kl_weight=settings.kl_weight,
    )
    dataset = Dataset.from_dict({"text": list(texts)}).map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=settings.max_length),
        batched=True, remove_columns=["text"], load_from_cache_file=False,
    )
    import torch

    out_dir = Path(out_dir)
    args = TrainingArguments(
        output_dir=str(out_dir / "checkpoints"),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        warmup_steps=0.1,
        save_strategy="no",
        logging_steps=50,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability,
                                                      seed=settings.seed),
        processing_class=tokenizer,
    )
    metrics: dict[str, Any] = trainer.train().metrics
    if trainer.is_world_process_zero():  # under a data-parallel launcher, one rank writes the checkpoint
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return metrics
