"""TODKAT's topic pre-training settings, apart from the training code so that the CLI lists them without torch."""

from __future__ import annotations

from dataclasses import dataclass

from erc_synth.classifiers.settings import StageSettings, at_least, probability, retuned, setting


@dataclass
class TopicTrainingSettings(StageSettings):
    """Masked-LM pre-training settings (small CPU-friendly defaults; raise epochs on a GPU)."""

    epochs: float = retuned(StageSettings, "epochs", 1.0)
    learning_rate: float = retuned(StageSettings, "learning_rate", 5e-5)
    batch_size: int = retuned(StageSettings, "batch_size", 16)
    max_length: int = setting(64, "utterance truncation in tokens", at_least(2))
    mlm_probability: float = setting(0.15, "share of tokens masked", probability)
    topic_layer: int | None = setting(None, "insert the topic layer after this encoder layer (none: the middle)",
                                      at_least(1))
    topic_dim: int = setting(50, "number of latent topics", at_least(1))
    topic_inner_dim: int = setting(256, "hidden size of the topic VAE", at_least(1))
    kl_weight: float = setting(1.0, "weight of the topic KL term", at_least(0))

    @classmethod
    def kind(cls) -> str:
        return "topic pre-training"
