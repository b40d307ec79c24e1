"""The bottom layer: what every other part of erc-synth may import, and which imports nothing of erc-synth's.

Why a home of its own: errors, environment variables, atomic file writes, the benchmark registry and the dataset
key are used by every area (generation, classifiers, cards, the console script). Kept apart from the readers,
builders and run store, they can sit below all of them, and import-linter holds them there
(``docs/architecture.md``).
"""
