"""The JS divergence the card reports; it lives in ``dataset_scripts.divergence`` so the quality report (a lower
layer) computes it with the same code."""

from erc_synth.dataset_scripts.divergence import counts_vector, js_divergence

__all__ = ["counts_vector", "js_divergence"]
