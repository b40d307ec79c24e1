"""Real server processes used by the tests (TGI/OpenAI protocol, Hub protocol)."""
