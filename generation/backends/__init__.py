"""Backends that turn chat messages into text: ``tgi``, ``openai`` and in-process ``transformers``."""
