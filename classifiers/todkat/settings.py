"""TODKAT's topic pre-training settings, apart from the training code so that the CLI lists them without torch."""

from __future__ import annotations

from dataclasses import dataclass

from erc_synth.classifiers.settings import MAX_BATCH, MAX_TOKENS, StageSettings, between, probability, retuned, setting


@dataclass
class TopicTrainingSettings(StageSettings):
    """Masked-LM pre-training settings (small CPU-friendly defaults; raise epochs on a GPU)."""

    epochs: float = retuned(StageSettings, "epochs", 1.0)
    learning_rate: float = retuned(StageSettings, "learning_rate", 5e-5)
    batch_size: int = retuned(StageSettings, "batch_size", 16)
    max_length: int = setting(64, "utterance truncation in tokens", between(2, MAX_TOKENS))
    mlm_probability: float = setting(0.15, "share of tokens masked", probability)
    topic_layer: int | None = setting(None, "insert the topic layer after this encoder layer (none: the middle)",
                                      between(1, 1_000))
    topic_dim: int = setting(50, "number of latent topics", between(1, MAX_BATCH))
    topic_inner_dim: int = setting(256, "hidden size of the topic VAE", between(1, MAX_BATCH))
    kl_weight: float = setting(1.0, "weight of the topic KL term", between(0, 1e6))

    @classmethod
    def kind(cls) -> str:
        return "topic pre-training"
