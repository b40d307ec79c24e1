"""A tiny causal LM (2-layer Llama + in-process BPE tokenizer) that tests and the test server load like any model.

Why it is briefly trained rather than left random: a random model almost never emits a newline or ``(``, so
grammar-constrained dialogues would run to ``max_new_tokens`` every time and tests would be slow; a couple of
seconds of training on fake ``Speaker: words (N)`` dialogues makes it write short lines and stop, while it
stays small enough (about 100k parameters) to generate hundreds of tokens per second on one CPU core.

The build is deterministic (fixed seeds, one thread, no timestamps): two calls give the same bytes, so the
test server's ``model_sha`` and every seeded text are reproducible. A folder is built once and reused: a
marker file written last says the build finished.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from erc_synth.dataset_scripts.core.registry import BENCHMARKS

#: Bump when the build changes, so cached folders from an older build are rebuilt.
BUILD_VERSION = "tiny-lm-v1"
_MARKER = "tiny_lm_build.txt"
_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_WORD_TEXT = (
    "i you we they it this that what why how oh no yes okay well really so just know think want need "
    "love hate can't don't believe tell told said here there now today tonight coffee apartment date "
    "party job money time great good bad sorry thanks hey guys wait look come go going gonna please "
    "never always again stop right funny happy sad angry scared wow hmm um the a and but with about"
)
_WORDS = tuple(_WORD_TEXT.split())


def _speakers() -> list[str]:
    return sorted({speaker for benchmark in BENCHMARKS.values() for speaker in benchmark.speakers})


def _fake_dialogue(rng: random.Random, speakers: list[str]) -> str:
    lines = []
    for _ in range(rng.randint(2, 8)):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 10)))
        punct = rng.choice([".", "!", "?", ""])
        lines.append(f"{rng.choice(speakers)}: {words.capitalize()}{punct} ({rng.randint(0, 6)})")
    return "\n".join(lines)


def _fake_chat(rng: random.Random, speakers: list[str]) -> str:
    benchmark = rng.choice(list(BENCHMARKS.values()))
    options = ", ".join(f"{i}: {label}" for i, label in enumerate(benchmark.labels))
    user = (
        f"Write a dialogue of 2 to 8 turns among {', '.join(benchmark.speakers[:4])}. "
        f"Labels: {options}. One line per utterance: Speaker: utterance (N)"
    )
    return (
        f"<|im_start|>system\nYou write dialogues.<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
        f"<|im_start|>assistant\n{_fake_dialogue(rng, speakers)}<|im_end|>\n"
    )


def _train_tokenizer(corpus: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=640,
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def _build(directory: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(1234)
    speakers = _speakers()
    corpus = [_fake_chat(rng, speakers) for _ in range(600)]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(corpus),
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = _CHAT_TEMPLATE

    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: reductions in a fixed order, hence the same weights every build
    try:
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
        ids = [token for text in corpus for token in fast(text)["input_ids"]]
        data = torch.tensor(ids, dtype=torch.long)
        seq, batch = 64, 16
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        generator = torch.Generator().manual_seed(0)
        model.train()
        for _ in range(50):
            starts = torch.randint(0, len(data) - seq - 1, (batch,), generator=generator)
            inputs = torch.stack([data[s : s + seq] for s in starts.tolist()])
            loss = model(input_ids=inputs, labels=inputs).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
    finally:
        torch.set_num_threads(previous_threads)
    model.generation_config.do_sample = False
    model.save_pretrained(directory)
    fast.save_pretrained(directory)


def build_tiny_lm(directory: str | Path) -> Path:
    """Build (or reuse) the tiny model and tokenizer in ``directory`` and return it; loadable with
    ``TransformersBackend(directory)`` or ``AutoModelForCausalLM.from_pretrained(directory)``."""
    directory = Path(directory)
    marker = directory / _MARKER
    if marker.is_file() and marker.read_text() == BUILD_VERSION:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    _build(directory)
    marker.write_text(BUILD_VERSION)
    return directory


@pytest.fixture(scope="session")
def tiny_lm_dir(request: pytest.FixtureRequest) -> Path:
    """The tiny model folder, built once and kept in pytest's cache folder between sessions (the same folder
    as ``helpers.servers.process``'s fixture, so a session builds it at most once; the marker rebuilds stale builds)."""
    return build_tiny_lm(request.config.cache.mkdir("erc_synth_tiny_lm"))


def tiny_lm_speakers() -> list[str]:
    """Speakers the tiny model saw in training (every benchmark's), for tests that want plausible output."""
    return _speakers()


if __name__ == "__main__":  # pragma: no cover - manual helper
    import sys

    print(json.dumps(str(build_tiny_lm(sys.argv[1] if len(sys.argv) > 1 else "tiny-lm"))))
