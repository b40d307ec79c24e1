"""Names shared by the card and the publisher, kept import-light so ``push`` does not load ``datasets``."""

from __future__ import annotations

from erc_synth.dataset_scripts.core.dataset_key import DatasetKey

#: Stands for the organisation in the card's load snippet until ``push_folder`` knows the real repo id.
ORG_PLACEHOLDER = "ORG"


def repo_name(benchmark: str, mode: str) -> str:
    """Hub repo name of a synthetic set: ``{benchmark}-synth-{mode}``."""
    return DatasetKey(benchmark, mode).repo_name
