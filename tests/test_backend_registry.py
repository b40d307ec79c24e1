"""One backend registry read by the CLI and the presets; each backend's honest declaration of what it applies."""

from __future__ import annotations

import argparse

import pytest

from erc_synth import preset_schema
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.generation import cli
from erc_synth.generation.backends.base import DECLARED_PARAMETERS, AppliedSettings, Grammar, SamplingParams
from erc_synth.generation.backends.factory import BACKENDS, create_backend
from erc_synth.generation.backends.openai_compat import DIALECTS, SERVER_KINDS, openai_parameters


def _generate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser


def test_the_cli_and_the_presets_read_the_factory_registry() -> None:
    assert preset_schema.BACKENDS is BACKENDS == ("transformers", "tgi", "openai", "vllm")
    parser = _generate_parser()
    args = parser.parse_args(["generate", "--benchmark", "meld", "--num-dialogues", "1", "--out", "x",
                              "--backend", "vllm"])
    assert args.backend == "vllm" and args.server is None
    with pytest.raises(SystemExit):
        parser.parse_args(["generate", "--benchmark", "meld", "--num-dialogues", "1", "--out", "x",
                           "--backend", "ollama"])
    assert tuple(DIALECTS) == SERVER_KINDS


def test_server_kind_is_an_openai_backend_option_only() -> None:
    backend = create_backend(backend="openai", endpoints=["http://127.0.0.1:9"], backend_options={"server": "vllm"})
    assert backend.server_kind == "vllm" and backend.grammar_kind == "regex"
    with pytest.raises(ErcSynthError,
                       match=r"^backend_options\.server: applies to backend openai only, not to backend tgi$"):
        create_backend(backend="tgi", endpoints=["http://127.0.0.1:9"], backend_options={"server": "vllm"})


def test_each_dialect_sends_exactly_what_it_declares_applied() -> None:
    params = SamplingParams(temperature=0.7, top_p=0.9, top_k=50, typical_p=0.95, repetition_penalty=1.2,
                            max_new_tokens=64, stop=("\n\n",))
    regex = Grammar("regex", "(A|B): [a-z]+ \\([0-6]\\)")
    for kind, dialect in DIALECTS.items():
        declared = dialect.applied().sampling
        grammar = regex if dialect.regex_body else Grammar("json_schema", {"type": "object", "properties": {}})
        body = openai_parameters(params, 7, grammar, dialect)
        sent = {name for name, field in dialect.extra_fields.items() if field in body}
        for name in ("top_k", "typical_p", "repetition_penalty"):
            assert declared[name] is (name in sent), (kind, name)
        assert body["seed"] == 7 and body["max_tokens"] == 64 and body["stop"] == ["\n\n"]
        assert set(body) & dialect.constraint_fields, kind
    vllm_body = openai_parameters(params, 7, regex, DIALECTS["vllm"])
    assert vllm_body["structured_outputs"] == {"regex": regex.value} and "guided_regex" not in vllm_body
    assert "typical_p" not in vllm_body and DIALECTS["vllm"].applied().sampling["typical_p"] is False


def test_a_declaration_must_name_every_parameter() -> None:
    with pytest.raises(ValueError, match="declare exactly"):
        AppliedSettings({"temperature": True}, constraint=None)
    record = AppliedSettings.declare(not_applied=("typical_p",), constraint="regex via x").record(False)
    assert record["constraint"] is None and set(record["sampling"]) == set(DECLARED_PARAMETERS)
