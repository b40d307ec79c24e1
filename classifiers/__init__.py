"""classifiers package of erc-synth."""
