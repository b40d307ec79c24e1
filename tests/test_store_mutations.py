"""Property: on mutated run stores, build reports and parquet files, the readers either read them or raise the
project's user error (``ErcSynthError``), never another exception class that would reach a user as a traceback.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers.builder_support import make_run_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.run_store import RunStore

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False)
                           | st.text(max_size=8), lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("store") / "run", "meld", "natural", n=4, plant_duplicates=False)


def _mutated_json_line(line: str, key: str, value) -> str:
    record = json.loads(line)
    record[key] = value
    return json.dumps(record)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_run_store_reads_or_raises_the_users_error(run_dir: Path, data) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(shutil.copytree(run_dir, Path(scratch) / "run"))
        name = data.draw(st.sampled_from(["records.jsonl", "manifest.json"]))
        path = copy / name
        lines = path.read_text().splitlines() if name == "records.jsonl" else [path.read_text()]
        at = data.draw(st.integers(0, len(lines) - 1))
        keys = sorted(json.loads(lines[at]))
        if data.draw(st.booleans()):
            lines[at] = _mutated_json_line(lines[at], data.draw(st.sampled_from(keys)), data.draw(JSON_VALUES))
            path.write_text("\n".join(lines) + "\n")
        else:
            raw = path.read_bytes()
            cut = data.draw(st.integers(0, len(raw)))
            path.write_bytes(raw[:cut] + data.draw(st.binary(max_size=6)) + raw[cut + 1:])
        try:
            store = RunStore.open(copy)
            try:
                store.records()
            finally:
                store.close()
        except ErcSynthError:
            pass


@settings(max_examples=15, deadline=None)
@given(cut=st.integers(0, 4000), junk=st.binary(max_size=16))
def test_a_damaged_parquet_file_loads_or_raises_the_users_error(cut: int, junk: bytes) -> None:
    from erc_synth.dataset_scripts.built_files import load_built_config
    from erc_synth.dataset_scripts.core.registry import get_benchmark
    from erc_synth.dataset_scripts.schema import dialogues_dataset

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "data" / "dialogues").mkdir(parents=True)
        path = folder / "data" / "dialogues" / "train-00000-of-00001.parquet"
        dialogues_dataset(get_benchmark("meld"), [{"dialogue_id": "d0", "speakers": ["A", "B"],
                                                   "utterances": ["Hi.", "Oh!"], "emotions": [0, 4]}]
                          ).to_parquet(str(path))
        raw = path.read_bytes()
        path.write_bytes(raw[:cut] + junk + raw[cut + len(junk):])
        with contextlib.suppress(ErcSynthError):
            load_built_config(folder)
