"""min_p: applied by the in-process backends and the servers that take it, declared as not applied elsewhere."""

from __future__ import annotations

import asyncio

import pytest
from helpers.servers.tiny_lm import tiny_lm_dir  # noqa: F401  (session fixture)

from erc_synth.generation.backends.base import GenerationRequest, SamplingParams
from erc_synth.generation.backends.openai_compat import DIALECTS, openai_parameters
from erc_synth.generation.backends.tgi import TgiBackend
from erc_synth.generation.backends.transformers_backend import TransformersBackend
from erc_synth.generation.engine import SettingError, sampling_from

PROMPT = ({"role": "user", "content": "Write a dialogue among Ross and Joey."},)


def test_a_min_p_near_one_keeps_only_the_best_token_so_sampling_becomes_greedy(tiny_lm_dir) -> None:  # noqa: F811
    backend = TransformersBackend(tiny_lm_dir, batch_size=4, device="cpu")
    greedy = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, typical_p=1.0, max_new_tokens=30)
    narrow = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, typical_p=1.0, min_p=0.999, max_new_tokens=30)
    wide = SamplingParams(temperature=1.5, top_k=0, top_p=1.0, typical_p=1.0, max_new_tokens=30)
    requests = [GenerationRequest(PROMPT, seed, params) for seed in (1, 2, 3) for params in (greedy, narrow, wide)]
    texts = [r.text for r in asyncio.run(backend.generate_batch(requests))]
    asyncio.run(backend.aclose())
    greedy_texts, narrow_texts, wide_texts = texts[0::3], texts[1::3], texts[2::3]
    assert narrow_texts == greedy_texts
    assert wide_texts != greedy_texts  # sampling without min_p does differ, so the equality above is min_p's
    assert backend.applied().sampling["min_p"] is True


def test_servers_get_min_p_where_their_kind_takes_it_and_the_record_says_so() -> None:
    params = SamplingParams(min_p=0.05)
    for kind in ("vllm", "sglang", "llamacpp"):
        assert openai_parameters(params, 1, None, DIALECTS[kind])["min_p"] == 0.05
        assert DIALECTS[kind].applied().sampling["min_p"] is True
    for kind in ("tgi", "openai"):
        assert "min_p" not in openai_parameters(params, 1, None, DIALECTS[kind])
        assert DIALECTS[kind].applied().sampling["min_p"] is False
    assert "min_p" not in openai_parameters(SamplingParams(), 1, None, DIALECTS["vllm"])  # 0 is off: not sent
    assert TgiBackend(["http://localhost:1"]).applied().sampling["min_p"] is False


def test_min_p_out_of_range_is_refused() -> None:
    with pytest.raises(SettingError, match=r"sampling.min_p: must be a number in \[0, 1\)"):
        sampling_from({"min_p": 1.0})
