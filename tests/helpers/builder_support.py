"""Helpers shared by the builder, gates, cards and hub tests: RUN_DIRs written through the real RunStore.

The records look like what the generation engine writes (accepted dialogues with label indices, rejected
attempts with reasons, an index that never succeeded), with planted exact and near duplicates so the gates
have something to find.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore

_VOCAB_TEXT = (
    "coffee apartment couch pivot sandwich dinosaur museum paleontologist date wedding ring duck chick "
    "chef restaurant soap opera audition agent guitar song smelly cat massage sister brother baby nanny "
    "london vegas thanksgiving turkey trifle beef jam candles fireplace cheesecake neighbour hallway door "
    "key lottery ticket umbrella tuxedo dress shoes boots scarf blanket fort pizza lasagna cookies recipe "
    "grandmother notebook letter eighteen pages break fossil science lecture student boss office copier "
    "transponder meeting speech toast ceremony honeymoon flight airport gate train umbrella storm bathtub"
)
VOCAB = tuple(_VOCAB_TEXT.split())
TEMPLATE = "You are writing a scene from Friends.\nSpeakers: {speakers}\nTarget emotion: {target}\nTurns: {turns}\n"


def settings_for(benchmark: str, mode: str, num_dialogues: int, seed: int = 7) -> dict[str, Any]:
    return {
        "benchmark": benchmark, "mode": mode, "seed": seed, "num_dialogues": num_dialogues, "turns": [4, 8],
        "max_attempts": 3, "backend": "tgi", "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "chat_format": "chatml", "grammar": True,
        "sampling": {"temperature": 0.9, "top_p": 0.95, "top_k": 50, "repetition_penalty": 1.1,
                     "max_new_tokens": 768, "stop": ["</dialogue>"]},
        "prompt_version": "v1",
        "prompt_templates": {"system": "You write emotion-labelled TV dialogue as JSON.", "user": TEMPLATE},
    }


def _dialogue(rng: random.Random, benchmark: str) -> tuple[list[str], list[str], list[int]]:
    bench = get_benchmark(benchmark)
    turns = rng.randint(4, 8)
    speakers = [rng.choice(bench.speakers[:4]) for _ in range(turns)]
    utterances = [" ".join(rng.choice(VOCAB) for _ in range(rng.randint(8, 14))).capitalize() + "!"
                  for _ in range(turns)]
    emotions = [rng.randrange(bench.num_labels) for _ in range(turns)]
    return speakers, utterances, emotions


def make_run_dir(path: Path, benchmark: str = "meld", mode: str = "balanced", n: int = 30, seed: int = 7,
                 plant_duplicates: bool = True, copy_text: list[str] | None = None) -> Path:
    """Write a RUN_DIR of ``n`` requested dialogues; returns its path.

    With ``plant_duplicates``: index 5 is an exact copy of index 1 (different case and punctuation), index 9
    a near copy of index 2 (one word changed), index 3 has two rejected attempts then succeeds, index 11
    never succeeds. ``copy_text`` replaces the utterances of index 4 (to plant contamination).
    """
    bench = get_benchmark(benchmark)
    rng = random.Random(seed)
    store = RunStore.create_or_open(path, settings_for(benchmark, mode, n, seed),
                                    {"model_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "model_sha": "abc123def",
                                     "server_version": "3.3.7", "erc_synth_version": "0.1.0"})
    made: dict[int, tuple[list[str], list[str], list[int]]] = {}
    records = []
    for index in range(n):
        target = index % bench.num_labels if mode == "balanced" else None
        base = {"index": index, "seed": seed * 100_000 + index, "target_emotion": target}
        speakers, utterances, emotions = _dialogue(rng, benchmark)
        if plant_duplicates and index == 5:
            speakers, emotions = made[1][0], made[1][2]
            utterances = [u.upper().replace("!", "?!") + "  " for u in made[1][1]]
        if plant_duplicates and index == 9:
            speakers, utterances, emotions = made[2][0], list(made[2][1]), made[2][2]
            utterances[0] = utterances[0].replace(utterances[0].split()[1], "zebra", 1)
        if copy_text is not None and index == 4:
            utterances = list(copy_text)
            speakers, emotions = speakers[:len(utterances)] * 3, emotions * 3
            speakers, emotions = speakers[:len(utterances)], emotions[:len(utterances)]
        made[index] = (speakers, utterances, emotions)
        attempt = 0
        if plant_duplicates and index in (3, 11):
            for reason in ("json_parse_error", "unknown_label"):
                records.append({**base, "attempt": attempt, "status": "rejected", "reason": reason,
                                "detail": f"{reason} at char 17", "raw_text": '{"turns": [', "speakers": None,
                                "utterances": None, "emotions": None})
                attempt += 1
            if index == 11:
                records.append({**base, "attempt": attempt, "status": "rejected", "reason": "too_few_turns",
                                "detail": "2 turns < 4", "raw_text": "{}", "speakers": None, "utterances": None,
                                "emotions": None})
                continue
        records.append({**base, "attempt": attempt, "status": "accepted", "reason": None, "detail": None,
                        "raw_text": "{...}", "speakers": speakers, "utterances": utterances, "emotions": emotions})
    rng.shuffle(records)  # completion order varies in real runs; readers must not depend on it
    store.append(records)
    store.close()  # a RUN_DIR made for a test is handed to other processes: no writer lock held
    return path
