"""Render chat messages into the prompt string a model was trained on.

Why this matters: a model only follows instructions in its own chat format. Vicuna-13B v1.5 (the reference
model) ships no chat template and expects the FastChat ``vicuna_v1.1`` prompt; most newer models ship a
Jinja chat template in their tokenizer; ChatML is the common fallback of OpenAI-style servers; ``raw`` sends
the text as is (base models, or servers that apply their own template).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from erc_synth.dataset_scripts.core.errors import ErcSynthError

Messages = Sequence[dict[str, str]]

#: FastChat's ``vicuna_v1.1`` system prompt, used unless the messages bring their own system message.
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
CHAT_FORMATS: tuple[str, ...] = ("vicuna", "chatml", "template", "raw")


def _check_messages(messages: Messages) -> None:
    if not messages:
        raise ValueError("no messages to render")
    for position, message in enumerate(messages):
        if message.get("role") not in {"system", "user", "assistant"} or not isinstance(message.get("content"), str):
            raise ValueError(f"message {position} needs role system/user/assistant and string content: {message!r}")


def render_vicuna(messages: Messages) -> str:
    """FastChat ``vicuna_v1.1``: ``SYSTEM USER: ... ASSISTANT: ...</s>USER: ... ASSISTANT:``.

    Separators follow FastChat's ``SeparatorStyle.ADD_COLON_TWO`` (``" "`` after user turns, ``"</s>"`` after
    assistant turns); the prompt ends with ``ASSISTANT:`` so that the model writes the answer.
    """
    _check_messages(messages)
    system = VICUNA_SYSTEM
    turns = list(messages)
    if turns[0]["role"] == "system":
        system, turns = turns[0]["content"], turns[1:]
    parts = [system + " "]
    for message in turns:
        if message["role"] == "system":
            raise ValueError("vicuna format takes one system message, first")
        if message["role"] == "user":
            parts.append(f"USER: {message['content']} ")
        else:
            parts.append(f"ASSISTANT: {message['content']}</s>")
    parts.append("ASSISTANT:")
    return "".join(parts)


def render_chatml(messages: Messages) -> str:
    """ChatML: ``<|im_start|>role\\ncontent<|im_end|>\\n`` per message, then ``<|im_start|>assistant\\n``."""
    _check_messages(messages)
    body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def render_raw(messages: Messages) -> str:
    """The message contents alone, separated by blank lines (for base models)."""
    _check_messages(messages)
    return "\n\n".join(m["content"] for m in messages)


def render_template(messages: Messages, tokenizer: Any) -> str:
    """The tokenizer's own chat template with ``add_generation_prompt=True``."""
    _check_messages(messages)
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ErcSynthError("chat format 'template' needs a tokenizer with a chat template; use vicuna, chatml or raw")
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


@dataclass(frozen=True)
class ChatFormat:
    """A resolved chat format: its name, how it renders, and whether tokenizing must add special tokens.

    ``add_special_tokens`` is False for ``template`` because chat templates already write the BOS token
    where the model wants one (as TGI's Messages API does); the other formats rely on the tokenizer's BOS.
    """

    name: str
    _render: Callable[[Messages], str]
    add_special_tokens: bool = True

    def render(self, messages: Messages) -> str:
        return self._render(messages)


def get_chat_format(name: str, tokenizer: Any = None) -> ChatFormat:
    """The named format; ``template`` binds ``tokenizer`` (checked now, so a bad choice fails early)."""
    if name == "vicuna":
        return ChatFormat("vicuna", render_vicuna)
    if name == "chatml":
        return ChatFormat("chatml", render_chatml)
    if name == "raw":
        return ChatFormat("raw", render_raw)
    if name == "template":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ErcSynthError(
                "chat format 'template' needs a tokenizer with a chat template; use vicuna, chatml or raw"
            )
        return ChatFormat("template", lambda messages: render_template(messages, tokenizer), add_special_tokens=False)
    raise ErcSynthError(f"unknown chat format {name!r}; choose auto or one of: {', '.join(CHAT_FORMATS)}")


def resolve_chat_format_name(name_or_auto: str, model_id: str | None, tokenizer: Any = None) -> str:
    """``auto`` -> ``vicuna`` for Vicuna models, else ``template`` when the tokenizer has one, else ``raw``."""
    if name_or_auto != "auto":
        return name_or_auto
    if model_id and "vicuna" in model_id.lower():
        return "vicuna"
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return "template"
    return "raw"


def resolve_chat_format(name_or_auto: str, model_id: str | None, tokenizer: Any = None) -> ChatFormat:
    """Resolve ``auto`` (see ``resolve_chat_format_name``) and return the bound ``ChatFormat``."""
    return get_chat_format(resolve_chat_format_name(name_or_auto, model_id, tokenizer), tokenizer)


def render_chat(name: str, messages: Messages, tokenizer: Any = None) -> str:
    """Render ``messages`` with the named format (``auto`` is not accepted here: resolve it first)."""
    return get_chat_format(name, tokenizer).render(messages)
