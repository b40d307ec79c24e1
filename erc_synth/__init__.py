"""erc-synth: synthetic emotion-labelled dialogues for ERC research, the glue layer and console script.

The library lives in the top-level packages ``dataset_scripts``, ``generation``, ``classifiers``,
``evaluate_metrics`` and ``hub_cards``; this package only wires them into the ``erc-synth`` command and the
end-to-end presets, so it sits above all of them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("erc-synth")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
