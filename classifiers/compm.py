"""CoMPM (Lee and Lee, NAACL 2022): context model plus pre-trained speaker memory, batched.

* Context model (CoM): an encoder over ``SPK: utt_1 SPK: utt_2 ... SPK: current`` (all previous turns and the
  current one; no future), truncated from the LEFT to ``max_length - 1`` tokens so the current utterance and
  the nearest context survive, with the first token (``<s>``/``[CLS]``) prepended and pooled.
* Speaker memory (PM): a second encoder over each earlier utterance of the current speaker (``<s> utt``, each
  left-truncated to ``max_memory_length``), first token pooled, run through a GRU in chronological order; its
  last state is added to the context vector before the linear head. A speaker with no earlier utterance gets a
  zero memory vector, as in the reference code.

Differences from the reference code (rungjoo/CoMPM), recorded on purpose:

* The reference trains with batch size 1 and feeds padded token ids without an attention mask. Here batches
  are padded dynamically with attention masks for both encoders, and memories are padded to the batch's
  largest memory; the GRU runs on a packed sequence, so padding memories never reach it.
* Speaker tags are the speakers' names as text (``Rachel: ...``), as in the EmoBERTa-style input, instead of
  per-dialogue special tokens ``<s1>``, ``<s2>``; no embedding resize is needed and any tokenizer works.
* ``max_memory_utterances`` can cap the memory to the most recent utterances (None = all, as the reference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .architectures import Architecture
from .inputs import first_token_id, speaker_text, target_label
from .utterance_batches import add_labels, map_splits, pad_input_ids, pad_token_id


class CompmConfig(PretrainedConfig):
    """Config of :class:`CompmModel`: the encoder's config (as a dict) plus the GRU and head settings."""

    model_type = "erc_compm"

    def __init__(self, encoder_config: dict | None = None, gru_layers: int = 1, gru_dropout: float = 0.3,
                 classifier_dropout: float = 0.0, freeze_memory_encoder: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder_config = encoder_config or {}
        self.gru_layers = gru_layers
        self.gru_dropout = gru_dropout
        self.classifier_dropout = classifier_dropout
        self.freeze_memory_encoder = freeze_memory_encoder

    def encoder(self) -> PretrainedConfig:
        """The encoder's own config object."""
        settings = dict(self.encoder_config)
        return AutoConfig.for_model(settings.pop("model_type"), **settings)

    @property
    def hidden_size(self) -> int:
        return int(self.encoder_config["hidden_size"])


class CompmModel(PreTrainedModel):
    """Context encoder + speaker-memory encoder and GRU + linear head, with ``save/from_pretrained``."""

    config_class = CompmConfig
    base_model_prefix = "compm"
    main_input_name = "input_ids"

    def __init__(self, config: CompmConfig) -> None:
        super().__init__(config)
        encoder_config = config.encoder()
        self.context_encoder = AutoModel.from_config(encoder_config, add_pooling_layer=False)
        self.memory_encoder = AutoModel.from_config(encoder_config, add_pooling_layer=False)
        hidden = config.hidden_size
        self.gru = nn.GRU(hidden, hidden, num_layers=config.gru_layers, batch_first=True,
                          dropout=config.gru_dropout if config.gru_layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(hidden, config.num_labels)
        self.post_init()
        if config.freeze_memory_encoder:
            self.memory_encoder.requires_grad_(False)

    def _init_weights(self, module: nn.Module) -> None:
        # Encoders initialise themselves (and are overwritten by pretrained weights); only the head is ours.
        if isinstance(module, nn.Linear) and module is self.classifier:
            module.weight.data.normal_(0.0, 0.02)
            module.bias.data.zero_()

    @classmethod
    def from_encoder(cls, encoder: str, num_labels: int, label_names: Sequence[str], **settings: Any) -> CompmModel:
        """A fresh CoMPM whose two encoders start from the same pretrained checkpoint."""
        pretrained = AutoModel.from_pretrained(encoder, add_pooling_layer=False)
        config = CompmConfig(
            encoder_config=pretrained.config.to_dict(), num_labels=num_labels,
            id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
            **settings,
        )
        model = cls(config)
        state = pretrained.state_dict()
        model.context_encoder.load_state_dict(state)
        model.memory_encoder.load_state_dict(state)
        return model

    def memory_vectors(self, memory_input_ids: torch.Tensor, memory_attention_mask: torch.Tensor) -> torch.Tensor:
        """Speaker-memory vectors ``(batch, hidden)`` from padded memories ``(batch, utterances, tokens)``.

        Memory slots whose mask is all zero are padding: they are not encoded and the GRU stops before them;
        a row with no memory at all gets zeros.
        """
        batch, slots, _ = memory_input_ids.shape
        hidden = self.config.hidden_size
        lengths = memory_attention_mask[:, :, 0].sum(dim=1)  # memories are left-aligned
        result = memory_input_ids.new_zeros((batch, hidden), dtype=self.classifier.weight.dtype)
        if slots == 0 or int(lengths.max()) == 0:
            return result
        valid = memory_attention_mask[:, :, 0].bool()
        encoded = self.memory_encoder(
            input_ids=memory_input_ids[valid], attention_mask=memory_attention_mask[valid]
        ).last_hidden_state[:, 0]
        sequence = encoded.new_zeros((batch, slots, hidden))
        sequence[valid] = encoded
        has_memory = lengths > 0
        packed = nn.utils.rnn.pack_padded_sequence(
            sequence[has_memory], lengths[has_memory].cpu(), batch_first=True, enforce_sorted=False
        )
        _, last = self.gru(packed)
        result = result.to(last.dtype)
        result[has_memory] = last[-1]
        return result

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                memory_input_ids: torch.Tensor | None = None, memory_attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **_: Any) -> SequenceClassifierOutput:
        context = self.context_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
        if memory_input_ids is not None and memory_input_ids.numel() > 0:
            if memory_attention_mask is None:
                raise ValueError("memory_input_ids need memory_attention_mask (padding slots are all-zero rows)")
            context = context + self.memory_vectors(memory_input_ids, memory_attention_mask).to(context.dtype)
        logits = self.classifier(self.dropout(context))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels, ignore_index=-100)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def speaker_memory_turns(speakers: Sequence[str], index: int, limit: int | None = None) -> list[int]:
    """Turns of the current speaker strictly before ``index``, oldest first (the most recent ``limit``)."""
    turns = [t for t in range(index) if speakers[t] == speakers[index]]
    return turns[-limit:] if limit else turns


def _examples(batch: dict[str, list], tokenizer, first_id: int, options: Mapping[str, Any]) -> dict:
    out: dict[str, list] = {"dialogue_id": [], "turn": [], "input_ids": [], "memory_input_ids": [], "labels": [],
                            "length": []}
    context_budget = options["max_length"] - 1
    memory_budget = options["max_memory_length"] - 1
    for i, dialogue_id in enumerate(batch["dialogue_id"]):
        speakers, utterances, emotions = batch["speakers"][i], batch["utterances"][i], batch["emotions"][i]
        if not utterances:
            continue
        tagged = tokenizer([speaker_text(s, u, options["speaker_tags"]) for s, u in zip(speakers, utterances,
                                                                                          strict=True)],
                           add_special_tokens=False)["input_ids"]
        plain = tokenizer(list(utterances), add_special_tokens=False)["input_ids"]
        for turn, emotion in enumerate(emotions):
            label = target_label(emotion)
            if label < 0 and options["drop_unlabelled"]:
                continue
            context: list[int] = []
            for t in range(turn + 1):
                context.extend(tagged[t])
            ids = [first_id, *context[-context_budget:]]  # left truncation keeps the current utterance
            memory = [
                [first_id, *plain[t][-memory_budget:]]
                for t in speaker_memory_turns(speakers, turn, options["max_memory_utterances"])
            ]
            out["dialogue_id"].append(dialogue_id)
            out["turn"].append(turn)
            out["input_ids"].append(ids)
            out["memory_input_ids"].append(memory)
            out["labels"].append(label)
            out["length"].append(len(ids) + sum(len(m) for m in memory))
    return out


def prepare(dialogues, tokenizer, **options):
    """One example per (labelled) utterance: context ids, the speaker's memory ids, labels, length."""
    options = ARCHITECTURE.options(options)
    first_id = first_token_id(tokenizer)
    return map_splits(dialogues, _examples, batch_size=32, name="compm",
                      fn_kwargs={"tokenizer": tokenizer, "first_id": first_id, "options": options})


class CompmCollator:
    """Pads contexts to the batch's longest, memories to its most utterances x longest utterance, with masks."""

    def __init__(self, tokenizer) -> None:
        self.pad_id = pad_token_id(tokenizer)

    def __call__(self, features: list[dict]) -> dict:
        size = len(features)
        longest = max(len(f["input_ids"]) for f in features)
        slots = max(len(f["memory_input_ids"]) for f in features)
        memory_longest = max((len(m) for f in features for m in f["memory_input_ids"]), default=0)
        batch = pad_input_ids(features, self.pad_id, longest)
        memory_ids = torch.full((size, slots, memory_longest), self.pad_id, dtype=torch.long)
        memory_mask = torch.zeros((size, slots, memory_longest), dtype=torch.long)
        for row, feature in enumerate(features):
            for slot, utterance in enumerate(feature["memory_input_ids"]):
                memory_ids[row, slot, : len(utterance)] = torch.tensor(utterance, dtype=torch.long)
                memory_mask[row, slot, : len(utterance)] = 1
        batch["memory_input_ids"] = memory_ids
        batch["memory_attention_mask"] = memory_mask
        return add_labels(batch, features)


def collator(tokenizer, **options) -> CompmCollator:
    return CompmCollator(tokenizer)


_MODEL_SETTINGS = ("gru_layers", "gru_dropout", "classifier_dropout", "freeze_memory_encoder")


def build_model(encoder: str, num_labels: int, label_names: Sequence[str], **options) -> CompmModel:
    settings = {k: options[k] for k in _MODEL_SETTINGS if k in options}
    return CompmModel.from_encoder(encoder, num_labels, label_names, **settings)


def load_model(path: str) -> CompmModel:
    return CompmModel.from_pretrained(path)


def _register_auto_classes() -> None:
    """Let ``AutoConfig``/``AutoModelForSequenceClassification`` load a saved CoMPM folder by its model_type."""
    from transformers import AutoModelForSequenceClassification

    try:
        AutoConfig.register(CompmConfig.model_type, CompmConfig)
        AutoModelForSequenceClassification.register(CompmConfig, CompmModel)
    except ValueError:  # already registered (module reloaded)
        pass


_register_auto_classes()

ARCHITECTURE = Architecture(
    name="compm",
    build_model=build_model,
    load_model=load_model,
    prepare=prepare,
    collator=collator,
    example_level="utterance",
    default_options={"max_length": 512, "max_memory_length": 512, "max_memory_utterances": None,
                     "speaker_tags": True, "drop_unlabelled": True},
    extra_options=_MODEL_SETTINGS,
    reference_hyperparameters={
        "learning_rate": 1e-6, "batch_size": 1, "epochs": 10, "max_length": 512,
        "source": "Lee and Lee 2022 (CoMPM), roberta-large; the reference code runs batch size 1 without masks",
    },
    description="CoMPM: context encoder plus speaker-memory encoder and GRU, batched with masks",
)
