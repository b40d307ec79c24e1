"""The in-process backend on a real (tiny) Llama: determinism across batches, grammars, TGI's finish reasons."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
import torch
import transformers
from helpers.servers.tiny_lm import tiny_lm_dir  # noqa: F401  (session fixture)

from erc_synth.generation.backends.base import (
    Backend,
    BackendError,
    GenerationRequest,
    GenerationResult,
    Grammar,
    SamplingParams,
)
from erc_synth.generation.backends.transformers_backend import TransformersBackend, uses_sampling
from erc_synth.generation.grammar import dialogue_json_schema, dialogue_regex

SPEAKERS = ["Ross", "Rachel Green", "Monica", "Joey"]
REGEX = dialogue_regex(SPEAKERS, 7, 2, 5, max_utterance_chars=60)
SAMPLED = SamplingParams(max_new_tokens=120)  # the reference parameters: temperature 0.7, top_k, typical_p
GREEDY = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, typical_p=1.0, max_new_tokens=40)


def messages(text: str = "Write a dialogue among Ross, Rachel Green, Monica and Joey.") -> tuple[dict, ...]:
    return ({"role": "user", "content": text},)


@pytest.fixture(scope="module")
def backend(tiny_lm_dir) -> TransformersBackend:  # noqa: F811
    """One intra-op thread: tiny tensors gain nothing from two, and on a busy machine OpenMP's spin-waits
    can make decoding many times slower; the process-wide setting is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield TransformersBackend(tiny_lm_dir, batch_size=8, device="cpu")
    torch.set_num_threads(threads)


def generate(backend: TransformersBackend, requests: list[GenerationRequest]):
    return asyncio.run(backend.generate_batch(requests))


def test_implements_the_backend_protocol(backend):
    assert isinstance(backend, Backend)
    # the decode slots; the engine hands over four times as many requests per call by default
    assert (backend.name, backend.supports_grammar, backend.preferred_batch_size) == ("transformers", True, 8)
    assert backend.max_batch == 8
    assert backend.chat_format.name == "template"


def test_a_request_gives_the_same_text_alone_and_anywhere_in_a_batch(backend):
    prompts = [messages(f"Write dialogue number {i} among Ross and Monica." + " Please." * i) for i in range(8)]
    other = SamplingParams(temperature=1.3, top_k=0, top_p=0.9, typical_p=1.0, repetition_penalty=1.2,
                           max_new_tokens=100)
    requests = [  # mixed grammars and parameter sets in one batch
        GenerationRequest(prompt, seed=100 + i, params=other if i % 3 == 0 else SAMPLED,
                          grammar=Grammar("regex", REGEX) if i % 2 else None)
        for i, prompt in enumerate(prompts)
    ]
    batched = generate(backend, requests)
    reversed_batch = generate(backend, requests[::-1])[::-1]
    alone = [generate(backend, [request])[0] for request in requests]
    assert [r.text for r in batched] == [r.text for r in alone] == [r.text for r in reversed_batch]
    assert [r.generated_tokens for r in batched] == [r.generated_tokens for r in alone]
    assert len({r.text for r in batched}) == 8  # different prompts and seeds: not one text repeated


def test_rows_joining_a_running_batch_at_any_time_give_the_same_text_as_alone(backend):
    """Continuous batching: with 3 slots for 9 requests from 4 calls that arrive one after another (and in
    the reverse order), rows join a batch that is already decoding; each text still equals its text alone."""
    other = SamplingParams(temperature=1.3, top_k=0, top_p=0.9, typical_p=1.0, repetition_penalty=1.2,
                           max_new_tokens=90, stop=("!",))
    requests = [
        GenerationRequest(messages(f"Dialogue {i} between Joey and Monica." + " Go." * (i % 4)), seed=50 + i,
                          params=(other, SAMPLED, GREEDY)[i % 3], grammar=Grammar("regex", REGEX) if i % 2 else None)
        for i in range(9)
    ]
    alone = [generate(backend, [request])[0] for request in requests]
    calls = [requests[0:2], requests[2:3], requests[3:6], requests[6:9]]

    async def staggered(groups: list[list[GenerationRequest]]) -> list[GenerationResult]:
        tasks = []
        for group in groups:
            tasks.append(asyncio.create_task(backend.generate_batch(group)))
            await asyncio.sleep(0.02)
        return [result for results in await asyncio.gather(*tasks) for result in results]

    backend.max_batch, slots = 3, backend.max_batch
    merged = backend.merged_rows
    try:
        forward = asyncio.run(staggered(calls))
        backward = asyncio.run(staggered([group[::-1] for group in calls[::-1]]))
    finally:
        backend.max_batch = slots
    assert backend.merged_rows - merged >= 6  # most rows did join a running batch
    expected = [(r.text, r.finish_reason, r.generated_tokens) for r in alone]
    assert [(r.text, r.finish_reason, r.generated_tokens) for r in forward] == expected
    backward_in_order = [r for group in calls for r in group][::-1]
    unscrambled = dict(zip(map(id, backward_in_order), backward, strict=True))
    assert [(unscrambled[id(q)].text, unscrambled[id(q)].finish_reason) for q in requests] == [e[:2] for e in expected]
    assert len({text for text, _, _ in expected}) == 9


def test_stop_strings_found_in_the_new_text_cut_where_a_whole_decode_would(backend):
    """Incremental detokenisation: a stop string spanning several tokens stops the row at the first token
    that completes it, and the text is the whole output up to the end of the stop string."""
    prompt = [backend.chat_format.render(messages())]
    full = backend.generate_prompts(prompt, [5], SAMPLED, add_special_tokens=False)[0].text
    quarter = len(full) // 4
    assert quarter >= 10, full
    stops = [full[quarter : quarter + 5], full[2 * quarter : 2 * quarter + 2], full[3 * quarter : 3 * quarter + 7]]
    for stop in stops:
        params = SamplingParams(max_new_tokens=SAMPLED.max_new_tokens, stop=("never there", stop))
        result = backend.generate_prompts(prompt, [5], params, add_special_tokens=False)[0]
        assert result.finish_reason == "stop_sequence"
        assert result.text == full[: full.find(stop) + len(stop)]


def test_withdrawn_rows_leave_the_batch_and_waiting_ones_are_never_admitted(backend):
    """A caller that goes away (a cancelled engine worker) frees its slot: with one slot, a later request can
    only finish if the withdrawn running row left, and a withdrawn waiting row never decodes a token."""
    endless = TransformersBackend.from_objects(backend.model, backend.tokenizer, batch_size=1)
    endless.eos_token_ids = [-1]  # rows end only at max_new_tokens
    prompt = [endless.chat_format.render(messages())]
    long = SamplingParams(max_new_tokens=1500)
    running, waiting = (endless._prepare_rows(prompt, [seed], long, None, False)[0] for seed in (1, 2))
    endless._scheduler.submit([running, waiting])
    deadline = time.monotonic() + 60
    while not running.generated and time.monotonic() < deadline:
        time.sleep(0.001)
    assert running.future.cancel() and waiting.future.cancel()
    later = endless.generate_prompts(prompt, [3], SamplingParams(max_new_tokens=5), add_special_tokens=False)[0]
    assert later.generated_tokens == 5
    assert running.finish_reason is None and 0 < len(running.generated) < long.max_new_tokens
    assert waiting.generated == []


def test_same_seed_same_text_other_seed_other_text(backend):
    request = GenerationRequest(messages(), seed=7, params=SAMPLED, grammar=Grammar("regex", REGEX))
    first, again = generate(backend, [request, request])
    assert first.text == again.text
    others = generate(backend, [GenerationRequest(messages(), seed=s, params=SAMPLED) for s in range(8, 12)])
    assert any(other.text != first.text for other in others)


def test_greedy_decoding_matches_transformers_generate(backend):
    """No warper active -> greedy (TGI's rule); the KV-cached, left-padded loop equals ``model.generate``."""
    assert not uses_sampling(GREEDY) and uses_sampling(SAMPLED)
    prompts = [backend.chat_format.render(messages("Hi" + " there" * i)) for i in (0, 3, 9)]
    results = backend.generate_prompts(prompts, [1, 2, 3], GREEDY, add_special_tokens=False)
    for prompt, result in zip(prompts, results, strict=True):
        ids = backend.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        expected = backend.model.generate(**ids, do_sample=False, max_new_tokens=GREEDY.max_new_tokens)
        new = expected[0, ids["input_ids"].shape[1] :].tolist()
        assert result.generated_tokens == len(new)
        assert result.text == backend.tokenizer.decode(new, skip_special_tokens=True)
        expected_reason = "eos_token" if new[-1] in backend.eos_token_ids else "length"
        assert result.finish_reason == expected_reason


def test_greedy_ignores_the_seed_and_top_k_1_equals_greedy(backend):
    prompt = [backend.chat_format.render(messages())]
    greedy = backend.generate_prompts(prompt, [1], GREEDY, add_special_tokens=False)[0]
    assert backend.generate_prompts(prompt, [2], GREEDY, add_special_tokens=False)[0] == greedy
    top1 = SamplingParams(temperature=0.9, top_k=1, top_p=1.0, typical_p=1.0, max_new_tokens=40)
    assert backend.generate_prompts(prompt, [3], top1, add_special_tokens=False)[0].text == greedy.text


def test_repetition_penalty_matches_transformers(backend):
    """Penalised rows (two strengths) decoded beside an unpenalised one each equal ``model.generate`` alone."""
    prompts = [backend.chat_format.render(messages("Hello" + " again" * i)) for i in (0, 2, 5)]
    penalties = (1.5, 1.0, 1.3)
    params = [SamplingParams(temperature=1.0, top_k=0, top_p=1.0, typical_p=1.0, repetition_penalty=penalty,
                             max_new_tokens=30) for penalty in penalties]
    results = backend.generate_prompts(prompts, [0, 1, 2], params, add_special_tokens=False)
    for prompt, penalty, result in zip(prompts, penalties, results, strict=True):
        ids = backend.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        expected = backend.model.generate(**ids, do_sample=False, max_new_tokens=30, repetition_penalty=penalty)
        new = expected[0, ids["input_ids"].shape[1] :].tolist()
        assert result.text == backend.tokenizer.decode(new, skip_special_tokens=True)
    plain = backend.generate_prompts(prompts[:1], [0], GREEDY, add_special_tokens=False)[0]
    assert results[0].text != plain.text  # the penalty did change this (deterministic) output


def test_regex_grammar_output_always_matches(backend):
    grammar = Grammar("regex", REGEX)
    requests = [GenerationRequest(messages(), seed=s, params=SAMPLED, grammar=grammar) for s in range(8)]
    results = generate(backend, requests)
    finished = [r for r in results if r.finish_reason == "eos_token"]
    assert len(finished) >= 6, [r.finish_reason for r in results]
    for result in finished:
        assert re.fullmatch(REGEX, result.text), result.text
    for result in results:  # truncated ones are prefixes of a valid dialogue
        assert all(re.fullmatch(r"(Ross|Rachel Green|Monica|Joey): [^\n()]+ \([0-6]\)", line)
                   for line in result.text.split("\n")[:-1])


def test_target_label_grammar_puts_the_label_in(backend):
    regex = dialogue_regex(SPEAKERS, 7, 2, 4, max_utterance_chars=40, target_label=5)
    grammar = Grammar("regex", regex)
    requests = [GenerationRequest(messages(), seed=s, params=SAMPLED, grammar=grammar) for s in range(4)]
    line = r"(Ross|Rachel Green|Monica|Joey): [^\n()]+ \([0-6]\)"
    for result in generate(backend, requests):
        # A clean stop matches the whole grammar (target included); a cut-off one is a valid prefix.
        complete = result.finish_reason == "eos_token"
        assert re.fullmatch(regex, result.text) if complete else all(
            re.fullmatch(line, text) for text in result.text.split("\n")[:-1])
        assert not complete or "(5)" in result.text


def test_json_schema_grammar_output_parses_and_respects_limits(backend):
    schema = dialogue_json_schema(SPEAKERS, 7, 1, 3, max_utterance_chars=30)
    params = SamplingParams(max_new_tokens=200)
    requests = [GenerationRequest(messages(), seed=s, params=params, grammar=Grammar("json_schema", schema))
                for s in range(4)]
    results = generate(backend, requests)
    finished = [r for r in results if r.finish_reason == "eos_token"]
    assert finished, [r.text for r in results]
    for result in finished:
        turns = json.loads(result.text)["turns"]
        assert 1 <= len(turns) <= 3
        for turn in turns:
            assert turn["speaker"] in SPEAKERS and 0 <= turn["emotion"] <= 6 and 1 <= len(turn["utterance"]) <= 30


def test_finish_reasons_and_token_counts_follow_tgi(backend):
    grammar = Grammar("regex", REGEX)
    short = SamplingParams(max_new_tokens=5)
    result = generate(backend, [GenerationRequest(messages(), seed=1, params=short, grammar=grammar)])[0]
    assert (result.finish_reason, result.generated_tokens) == ("length", 5)
    stop = SamplingParams(max_new_tokens=100, stop=(": ",))
    result = generate(backend, [GenerationRequest(messages(), seed=1, params=stop, grammar=grammar)])[0]
    assert result.finish_reason == "stop_sequence"
    assert result.text.endswith(": ") and result.text.count(": ") == 1  # the stop sequence is kept, as TGI does
    assert result.text[:-2] in SPEAKERS
    done = generate(backend, [GenerationRequest(messages(), seed=3, params=SAMPLED, grammar=grammar)])
    assert done[0].finish_reason == "eos_token"
    assert not done[0].text.endswith("<|im_end|>")  # the EOS token is counted (see the greedy test), not shown


def test_generation_runs_off_the_event_loop(backend):
    async def scenario() -> int:
        ticks = 0
        requests = [GenerationRequest(messages(), seed=s, params=SAMPLED, grammar=Grammar("regex", REGEX))
                    for s in range(8)]
        task = asyncio.create_task(backend.generate_batch(requests))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.005)
        await task
        return ticks

    assert asyncio.run(scenario()) > 3


def test_concurrent_batches_are_serialised_and_still_deterministic(backend):
    requests = [GenerationRequest(messages(), seed=s, params=SAMPLED) for s in range(3)]

    async def scenario():
        return await asyncio.gather(backend.generate_batch(requests), backend.generate_batch(requests[::-1]))

    forward, backward = asyncio.run(scenario())
    assert [r.text for r in forward] == [r.text for r in backward[::-1]]


def test_info_reports_model_sha_and_version(backend, tiny_lm_dir):  # noqa: F811
    info = asyncio.run(backend.info())
    assert info.backend == "transformers" and info.model_id == str(tiny_lm_dir)
    assert re.fullmatch(r"[0-9a-f]{64}", info.model_sha)
    assert info.server_version == f"transformers {transformers.__version__}"
    assert info.extra["chat_format"] == "template"
    same_weights = TransformersBackend.from_objects(backend.model, backend.tokenizer, model_id="x")
    assert re.fullmatch(r"[0-9a-f]{64}", same_weights.model_sha())
    changed = transformers.AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    with torch.no_grad():
        changed.model.norm.weight[0] += 1
    assert TransformersBackend.from_objects(changed, backend.tokenizer).model_sha() != same_weights.model_sha()


def test_bad_requests_raise_non_retryable_backend_errors(backend):
    too_long = SamplingParams(max_new_tokens=backend.max_context)
    with pytest.raises(BackendError, match="exceeds the model's context") as caught:
        generate(backend, [GenerationRequest(messages(), seed=1, params=too_long)])
    assert caught.value.retryable is False
    with pytest.raises(BackendError, match="invalid regex grammar") as caught:
        generate(backend, [GenerationRequest(messages(), seed=1, grammar=Grammar("regex", "(unclosed"))])
    assert caught.value.retryable is False
    with pytest.raises(ValueError, match="same length"):
        backend.generate_prompts(["a", "b"], [1], SAMPLED)
