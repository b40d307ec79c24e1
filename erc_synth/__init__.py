"""erc-synth: synthetic emotion-labelled dialogues for ERC research, the glue layer and console script.

Installed, erc-synth claims one import name, ``erc_synth``. Its areas keep their own folders at the repository
root and are installed as subpackages through a setuptools ``package-dir`` mapping: ``erc_synth.dataset_scripts``,
``erc_synth.generation``, ``erc_synth.classifiers``, ``erc_synth.evaluate_metrics`` and ``erc_synth.hub_cards``.
The modules of this folder itself (the console script, the pipeline, the presets) sit above all of them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("erc-synth")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
