"""hub_cards package of erc-synth."""
