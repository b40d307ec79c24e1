"""evaluate_metrics package of erc-synth."""
