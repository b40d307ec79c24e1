"""The experiment grid on a real local Ray cluster (2 CPUs, no dashboard), started once for the module.

The grid is classifiers/configs/smoke.yaml made CI-sized: its three architectures x org and nat, one seed, six
cells on the tiny encoder. The reference is the same grid trained one cell at a time in this process; every Ray
run must write the same tables byte for byte.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from helpers.experiment_configs import smoke_ci_config

from erc_synth.classifiers.experiment import Experiment, ExperimentConfig
from erc_synth.classifiers.workers import run_in_process, run_on_ray
from erc_synth.cli import main

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'erc-synth[ray]'")

TRAINING = re.compile(r"\] (\S+): training$")
FINISHED = re.compile(r"\] (\S+): real test weighted F1")
TABLES = ("results_long.csv", "main_table.md", "main_table.csv", "extended_table.md", "extended_table.csv")
#: The title Ray gives a worker process while it runs a cell (``ray::IDLE`` between tasks).
CELL_TITLE = b"ray::erc_synth_cell"


@pytest.fixture(scope="module")
def cluster():
    """A real local Ray cluster; its workers inherit this environment (one thread, offline, no tqdm bars)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (("HF_HUB_OFFLINE", "1"), ("TQDM_DISABLE", "1"), ("OMP_NUM_THREADS", "1")):
            patch.setenv(name, value)
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    return smoke_ci_config(tmp_path_factory.mktemp("grid"), regimes=["org", "nat"], seeds=[0])


@pytest.fixture(scope="module")
def keys(grid) -> list[str]:
    return [cell.key for cell in ExperimentConfig.load(grid).cells()]


@pytest.fixture(scope="module")
def reference(grid, tmp_path_factory) -> dict[str, bytes]:
    """The tables of the grid trained one cell at a time in this process."""
    out = tmp_path_factory.mktemp("reference")
    run_in_process(Experiment(ExperimentConfig.load(grid), out), log=lambda _: None, progress=False)
    return tables(out)


def tables(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in TABLES}


def matches(lines: list[str], pattern: re.Pattern) -> list[str]:
    return [m.group(1) for line in lines if (m := pattern.search(line))]


def leftovers(out: Path) -> list[Path]:
    """Half-written or scratch files a run must not leave behind."""
    return list(out.rglob(".*.tmp")) + list((out / "work").glob("*/*/*/*"))


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def running_cell_pids() -> list[int]:
    """Ray worker processes of this machine that are running a cell now (their process title says so)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(CELL_TITLE):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_six_cells_each_run_once_and_write_the_tables_of_one_at_a_time(cluster, grid, keys, reference, tmp_path):
    out, lines = tmp_path / "ray", []
    written = run_on_ray(Experiment(ExperimentConfig.load(grid), out), workers=2, log=lines.append, progress=False)

    announce = next(i for i, line in enumerate(lines) if "6 cells, 0 done earlier, 6 to run on Ray" in line)
    assert "(1 node(s), 2 CPU(s), 0 GPU(s); 1 CPU and 0 GPU a cell; 2 at a time)" in lines[announce]
    assert announce < next(i for i, line in enumerate(lines) if TRAINING.search(line))
    assert Counter(matches(lines, TRAINING)) == Counter(keys)  # submitted once each
    assert Counter(matches(lines, FINISHED)) == Counter(keys)  # finished once each
    assert sorted(json.loads(p.read_text())["cell"] for p in (out / "cells").rglob("*.json")) == sorted(keys)
    assert tables(out) == reference
    assert written["main_md"] == out / "main_table.md" and not leftovers(out)


def test_a_cell_whose_worker_is_killed_mid_training_is_retried_and_finished(cluster, grid, keys, reference,
                                                                            tmp_path):
    out, lines, finished = tmp_path / "ray", [], []
    experiment = Experiment(ExperimentConfig.load(grid), out)
    driver = threading.Thread(target=lambda: finished.append(run_on_ray(experiment, workers=1, log=lines.append,
                                                                        progress=False)))
    driver.start()
    wait_for(lambda: len(matches(lines, TRAINING)) >= 2, "the second cell to start")
    victim = matches(lines, TRAINING)[1]  # the first cell is done: one cell in flight, on a warm worker
    result = out / "cells" / f"{victim}.json"
    wait_for(lambda: any((out / "work" / victim).rglob("*")) and running_cell_pids(), f"{victim}'s Trainer")
    pids = running_cell_pids()
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    assert not result.exists(), "the cell finished before its worker was killed: nothing was retried"

    driver.join(timeout=300)
    assert finished, "the grid did not finish after the kill"
    assert not Path(f"/proc/{pids[0]}").exists()
    assert Counter(matches(lines, TRAINING)) == Counter(keys)  # the driver submitted it once; Ray retried it
    assert Counter(matches(lines, FINISHED)) == Counter(keys)
    assert json.loads(result.read_text())["cell"] == victim
    assert tables(out) == reference and not leftovers(out)


def test_an_interrupted_driver_cancels_its_cell_and_a_rerun_resumes(cluster, grid, keys, reference, tmp_path,
                                                                     capsys):
    """SIGINT to the driver (this process, as Ctrl-C sends it) while a cell trains; then the same command again."""
    out, lines, in_flight = tmp_path / "ray", [], []

    def interrupt_the_second_cell() -> None:
        wait_for(lambda: len(matches(lines, TRAINING)) >= 2, "the second cell")
        in_flight.append(matches(lines, TRAINING)[-1])
        wait_for(lambda: any((out / "work" / in_flight[0]).rglob("*")), f"{in_flight[0]}'s Trainer")
        os.kill(os.getpid(), signal.SIGINT)

    interrupter = threading.Thread(target=interrupt_the_second_cell, daemon=True)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        run_on_ray(Experiment(ExperimentConfig.load(grid), out), workers=1, log=lines.append, progress=False)
    interrupter.join(timeout=10)
    assert any(f"cancelling 1 cell(s) in flight ({in_flight[0]})" in line for line in lines), "\n".join(lines)
    done_first = matches(lines, FINISHED)
    assert done_first and in_flight[0] not in done_first
    assert not (out / "cells" / f"{in_flight[0]}.json").exists() and not leftovers(out)
    assert not (out / "work" / in_flight[0]).exists()
    assert not running_cell_pids()  # the cancelled cell's worker was stopped
    kept = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "cells").rglob("*.json")}
    assert len(kept) == len(done_first)

    capsys.readouterr()
    assert main(["experiment", str(grid), "--out", str(out), "--workers", "2"]) == 0  # the command, rerun
    rerun = capsys.readouterr().out.splitlines()
    assert sorted(matches(rerun, re.compile(r"\] (\S+): done earlier, skipped"))) == sorted(done_first)
    assert sorted(matches(rerun, FINISHED) + done_first) == sorted(keys)  # none trained twice to completion
    assert all((p.stat().st_mtime_ns, p.read_bytes()) == stamp for p, stamp in kept.items())
    assert tables(out) == reference and not leftovers(out)


@pytest.mark.timeout(120)
def test_a_cell_asking_for_a_gpu_on_a_cluster_without_one_gets_one_line(cluster, grid, tmp_path):
    """The console script joins the module's cluster (--ray-address) and refuses before submitting anything."""
    config = yaml.safe_load(grid.read_text())
    config["resources"] = {"gpu": 1, "cpu": 1}
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "erc_synth.cli", "experiment", str(path), "--out",
                           str(tmp_path / "run"), "--ray-address", cluster], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=100)
    errors = [line for line in done.stderr.splitlines() if "erc-synth experiment: error:" in line]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{path}: resources.gpu: each cell asks for 1 GPU(s), but no node of the Ray cluster has that many " \
           "(1 node(s), 0 GPU(s) in all, at most 0 on one)" in errors[0]
    assert not (tmp_path / "run" / "cells").exists() and "training" not in done.stdout


def test_cells_that_fail_leave_the_others_and_end_in_one_line(cluster, grid, tmp_path, capsys):
    """A cell's own error (here: its real data folder is gone) is not retried; the run names the first one."""
    config = yaml.safe_load(grid.read_text())
    config["benchmarks"]["meld"]["real_data"] = str(tmp_path / "gone")
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["experiment", str(path), "--out", str(tmp_path / "run"), "--workers", "2"]) == 2
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "erc-synth experiment: error:" in line]
    assert len(errors) == 1 and captured.err.endswith(errors[0] + "\n") and "Traceback" not in captured.err
    assert "6 of 6 cell(s) failed, the first meld/emoberta/org/seed0: " in captured.err
    assert str(tmp_path / "gone") in errors[0] and "rerun the same command to retry the failed ones" in errors[0]
    assert len([line for line in captured.out.splitlines() if ": failed: " in line]) == 6
    assert not (tmp_path / "run" / "cells").exists() and not (tmp_path / "run" / "main_table.md").exists()


def test_another_config_on_the_same_folder_is_refused_before_any_cell_starts(cluster, grid, tmp_path, capsys):
    out = tmp_path / "run"
    Experiment(ExperimentConfig.load(grid), out).check_grid_record()  # this folder belongs to the grid's config
    config = yaml.safe_load(grid.read_text())
    config["seeds"] = [0, 1]
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(config))
    assert main(["experiment", str(other), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert f"{out} was started with other settings than {other}" in captured.err
    assert "6 cell(s) differ, e.g. meld/compm/nat/seed1" in captured.err
    assert not (out / "cells").exists() and not (out / "work").exists() and "training" not in captured.out


def test_progress_bar_shows_the_grids_estimated_total_once_a_cell_is_done():
    import io

    from tqdm import tqdm

    from erc_synth.classifiers.workers import _estimate

    bar = tqdm(total=10, initial=2, file=io.StringIO(), mininterval=0)
    _estimate(bar, completed_here=0)
    assert not bar.postfix  # nothing finished yet: no estimate
    bar.start_t -= 60  # two cells took a minute, so the six left take three: four minutes in all
    bar.n = 4
    _estimate(bar, completed_here=2)
    assert bar.postfix == "grid total ~04:00"
