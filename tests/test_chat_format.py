"""Chat formats: the exact prompt strings, and how ``auto`` picks one for a model."""

from __future__ import annotations

import pytest
from helpers.servers.tiny_lm import tiny_lm_dir  # noqa: F401  (session fixture)
from transformers import AutoTokenizer

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.generation.chat_format import (
    VICUNA_SYSTEM,
    get_chat_format,
    render_chat,
    render_chatml,
    render_raw,
    render_vicuna,
    resolve_chat_format,
    resolve_chat_format_name,
)

USER = ({"role": "user", "content": "Write a dialogue."},)
WITH_SYSTEM = ({"role": "system", "content": "You write scripts."}, *USER)


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_dir):  # noqa: F811
    return AutoTokenizer.from_pretrained(tiny_lm_dir)


def test_vicuna_v1_1_prompt_is_exact():
    assert render_vicuna(USER) == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: Write a dialogue. ASSISTANT:"
    )
    assert render_vicuna(WITH_SYSTEM) == "You write scripts. USER: Write a dialogue. ASSISTANT:"
    assert VICUNA_SYSTEM.endswith("questions.")


def test_vicuna_multi_turn_uses_fastchat_separators():
    messages = (*USER, {"role": "assistant", "content": "Ross: Hi. (0)"}, {"role": "user", "content": "Again."})
    assert render_vicuna(messages) == (
        f"{VICUNA_SYSTEM} USER: Write a dialogue. ASSISTANT: Ross: Hi. (0)</s>USER: Again. ASSISTANT:"
    )


def test_vicuna_refuses_a_late_system_message():
    with pytest.raises(ValueError, match="system"):
        render_vicuna((*USER, {"role": "system", "content": "late"}))


def test_chatml_and_raw():
    assert render_chatml(WITH_SYSTEM) == (
        "<|im_start|>system\nYou write scripts.<|im_end|>\n<|im_start|>user\nWrite a dialogue.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_raw(WITH_SYSTEM) == "You write scripts.\n\nWrite a dialogue."


def test_template_uses_the_tokenizers_chat_template_with_generation_prompt(tokenizer):
    rendered = render_chat("template", USER, tokenizer)
    assert rendered == "<|im_start|>user\nWrite a dialogue.<|im_end|>\n<|im_start|>assistant\n"
    assert get_chat_format("template", tokenizer).add_special_tokens is False
    assert get_chat_format("vicuna").add_special_tokens is True


def test_auto_picks_vicuna_for_vicuna_ids_even_with_a_template(tokenizer):
    assert resolve_chat_format_name("auto", "lmsys/vicuna-13b-v1.5", tokenizer) == "vicuna"
    assert resolve_chat_format_name("auto", "LMSYS/Vicuna-7B", None) == "vicuna"


def test_auto_picks_the_template_when_there_is_one_else_raw(tokenizer):
    assert resolve_chat_format("auto", "some/model", tokenizer).name == "template"
    assert resolve_chat_format("auto", "some/base-model", None).name == "raw"
    tokenizer_without = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    tokenizer_without.chat_template = None
    assert resolve_chat_format("auto", "some/base-model", tokenizer_without).name == "raw"


def test_explicit_names_win_over_auto(tokenizer):
    assert resolve_chat_format("chatml", "lmsys/vicuna-13b-v1.5", tokenizer).name == "chatml"


def test_bad_choices_are_clear_errors():
    with pytest.raises(ErcSynthError, match="unknown chat format 'alpaca'"):
        get_chat_format("alpaca")
    with pytest.raises(ErcSynthError, match="chat template"):
        get_chat_format("template", None)
    with pytest.raises(ValueError, match="no messages"):
        render_chatml(())
    with pytest.raises(ValueError, match="role"):
        render_raw(({"role": "narrator", "content": "x"},))
