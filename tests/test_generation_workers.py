"""The main job's generation side by side in worker processes: the same bytes as one run after another.

The tiny Llama stands in for the embedded model (same preset, backend, engine and build); two datasets of the
quickstart preset are generated once in this process and once in two spawned workers.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.servers.tiny_lm import tiny_lm_dir  # noqa: F401  (session fixture)

from erc_synth.generation_workers import applied_workers, machine_cores
from erc_synth.pipeline import run_preset
from erc_synth.preset import load_preset


def _files(out: Path) -> dict[str, bytes]:
    wanted = [p for p in sorted(out.rglob("*")) if p.name == "records.jsonl" or p.suffix == ".parquet"]
    return {str(p.relative_to(out)): p.read_bytes() for p in wanted}


def test_workers_give_the_bytes_of_a_sequential_run(tmp_path: Path, tiny_lm_dir: Path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.chdir(tmp_path)  # no ../shared/data: the build needs no real benchmark here
    monkeypatch.delenv("ERC_SYNTH_REAL_DATA", raising=False)
    preset = load_preset("quickstart")
    preset = replace(preset, datasets=preset.datasets[:2])
    logs: list[str] = []
    common = {"model": str(tiny_lm_dir), "num_dialogues": 3, "progress": False}
    sequential = run_preset(preset, tmp_path / "one", workers=1, log=lambda line: None, **common)
    parallel = run_preset(preset, tmp_path / "two", workers=2, log=logs.append, **common)
    assert (sequential.generation_workers, parallel.generation_workers) == (1, 2)
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert len([name for name in one if name.endswith("records.jsonl")]) == 2
    assert one == two
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["generation_workers"] == 2
    # one summary line per dataset, each whole (not interleaved with the other worker's output)
    assert sorted(line.split(":")[0].rsplit("/", 1)[-1] for line in logs if "dialogues accepted" in line) == [
        "meld-synth-balanced", "meld-synth-natural"]
    again = run_preset(preset, tmp_path / "two", workers=2, log=logs.append, **common)
    assert [d.generated_now for d in again.datasets] == [0, 0] and _files(tmp_path / "two") == two


@pytest.mark.parametrize(("requested", "backend", "datasets", "applied"), [
    (None, "transformers", 64, machine_cores()), (8, "transformers", 6, 6), (2, "transformers", 6, 2),
    (4, "tgi", 6, 1), (4, "vllm", 6, 1),
])
def test_the_applied_worker_count(requested, backend, datasets, applied) -> None:
    assert applied_workers(requested, backend, datasets) == applied


def test_the_combined_bar_counts_every_run_and_starts_at_what_resumed_runs_had() -> None:
    """The workers' bar proxies against the parent's bar, through a real queue (the pool's calls, in order)."""
    import queue

    from erc_synth.generation_workers import _BarProxy, _CombinedBar

    events: queue.Queue = queue.Queue()
    combined = _CombinedBar(total=10, workers=2, events=events, enabled=True)
    first, second = _BarProxy("runs/a", events), _BarProxy("runs/b", events)
    first.initial = first.n = 2  # a resumed run: two dialogues stored before
    for bar, accepted in ((first, 3), (second, 1), (first, 4)):
        bar.set_postfix(accepted=accepted, rejected=0, retried=0, refresh=False)
        bar.update(1)
    first.close()
    second.close()
    combined.close()
    assert (combined.bar.initial, combined.bar.n) == (2, 5)
    assert combined.bar.postfix == "accepted=5, rejected=0, retried=0"
