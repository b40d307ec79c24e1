"""A library error names the setting as the Python API spells it (``endpoints``, ``label_policy``), never a flag.

A preset or Python user never typed ``--endpoint``; the commands put their flags in (``SettingError.worded``), and
``test_cli_errors`` holds what they print. Each case calls the Python API with one bad value and checks the
error's setting, that the message starts with it, and that no ``--flag`` appears in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.builder_support import make_run_dir

from erc_synth.classifiers.quality import QualitySettings
from erc_synth.classifiers.settings import check_cell_workers
from erc_synth.dataset_scripts.builder import parse_ratios
from erc_synth.dataset_scripts.core.errors import SettingError
from erc_synth.dataset_scripts.gates import GateOptions
from erc_synth.generation.backends.factory import create_backend
from erc_synth.generation.engine import GenerationConfig
from erc_synth.generation.tuning import TuneSettings
from erc_synth.hub_cards.folder import build_folder
from erc_synth.hub_cards.publish import push_folder
from erc_synth.pipeline import run_preset
from erc_synth.preset import load_preset

URL = "http://127.0.0.1:9"
_FLAG = re.compile(r"(^|[\s(])--[a-z]")


def _label_policy_without_audit(tmp: Path) -> None:
    build_folder(make_run_dir(tmp / "run", "meld", "natural", n=4, plant_duplicates=False), tmp / "out",
                 label_policy="agree")


def _out_dir_is_a_file(tmp: Path) -> None:
    (tmp / "out").write_text("mine")
    build_folder(make_run_dir(tmp / "run", "meld", "natural", n=4, plant_duplicates=False), tmp / "out")


CASES: dict[str, tuple[Callable[[Path], object], str]] = {
    "tgi-without-endpoints": (lambda tmp: create_backend(backend="tgi", endpoints=[]), "endpoints"),
    "openai-without-endpoints": (lambda tmp: create_backend(backend="openai", endpoints=[]), "endpoints"),
    "transformers-with-endpoints": (lambda tmp: create_backend(backend="transformers", endpoints=[URL]),
                                    "endpoints"),
    "server-kind-for-tgi": (lambda tmp: create_backend(backend="tgi", endpoints=[URL],
                                                       backend_options={"server": "vllm"}),
                            "backend_options.server"),
    "unknown-server-kind": (lambda tmp: create_backend(backend="openai", endpoints=[URL],
                                                       backend_options={"server": "ollama"}),
                            "backend_options.server"),
    "chat-format-for-openai": (lambda tmp: create_backend(backend="openai", endpoints=[URL], chat_format="chatml"),
                               "chat_format"),
    "unknown-backend": (lambda tmp: create_backend(backend="ollama"), "backend"),
    "few-shot-without-real-data": (lambda tmp: GenerationConfig(benchmark="meld", few_shot=2), "few_shot"),
    "label-policy-without-audit": (_label_policy_without_audit, "label_policy"),
    "unknown-label-policy": (lambda tmp: build_folder(tmp / "run", tmp / "out", label_policy="majority"),
                             "label_policy"),
    "out-dir-is-a-file": (_out_dir_is_a_file, "out_dir"),
    "huge-split-seed": (lambda tmp: build_folder(tmp / "run", tmp / "out", split_seed=10**20), "split_seed"),
    "huge-decontam-ngram": (lambda tmp: GateOptions(decontam_ngram=10**20), "decontam_ngram"),
    "ratios-not-numbers": (lambda tmp: parse_ratios("a,b,c"), "ratios"),
    "ratios-not-summing-to-one": (lambda tmp: parse_ratios((0.5, 0.6, 0.1)), "ratios"),
    "tune-lora-r": (lambda tmp: TuneSettings(lora_r=0).check(), "lora_r"),
    "tune-max-length": (lambda tmp: TuneSettings(max_length=10**20).check(), "max_length"),
    "grid-workers": (lambda tmp: check_cell_workers(10**20), "workers"),
    "quality-seed": (lambda tmp: QualitySettings(seed=-1), "seed"),
    "run-workers": (lambda tmp: run_preset(load_preset("quickstart"), tmp / "out", workers=10**20), "workers"),
    "push-repo-without-org": (lambda tmp: push_folder(tmp, "no-org"), "repo_id"),
    "run-num-dialogues": (lambda tmp: run_preset(load_preset("quickstart"), tmp / "out", num_dialogues=0),
                          "num_dialogues"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_library_error_names_the_setting_and_no_flag(name: str, tmp_path: Path) -> None:
    call, setting = CASES[name]
    with pytest.raises(SettingError) as caught:
        call(tmp_path)
    message = str(caught.value)
    assert caught.value.setting == setting and message.startswith(f"{setting}: "), message
    assert _FLAG.search(message) is None, message
    assert not (tmp_path / "out").is_dir()


def test_a_problem_that_names_another_setting_words_it_like_the_setting() -> None:
    with pytest.raises(SettingError) as caught:
        GenerationConfig(benchmark="meld", few_shot=2)
    assert "set real_data to the benchmark folder" in str(caught.value)
    flags = caught.value.worded(lambda name: "--" + name.replace("_", "-"))
    assert flags == ("--few-shot 2 needs the real meld train split: set --real-data to the benchmark folder, or "
                     "ERC_SYNTH_REAL_DATA")
