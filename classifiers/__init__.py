"""ERC classifiers trained with ``transformers.Trainer`` and the synthetic-then-real experiment.

Modules: ``architectures`` (the registry and the contract an architecture fulfils), ``emoberta`` and ``compm``
(two architectures; ``todkat`` is a third, in its own package), ``data`` (real and synthetic dialogues),
``training`` (Trainer stages and the org / nat / bal regimes), ``experiment`` and ``tables`` (the grid and its
result tables), ``model_card`` (cards and Hub upload), ``cli`` (``erc-synth train`` and ``erc-synth experiment``).
Nothing here is imported at package import time, so ``erc-synth --help`` stays fast.
"""
