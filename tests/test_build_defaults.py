"""Each build setting has one default (``dataset_scripts.core.build_defaults``): the preset schema, the
``erc-synth build`` flags, the gate options, the builder and the card's label policies all read it."""

from __future__ import annotations

import argparse
import dataclasses
import inspect

from erc_synth.build_cli import _add_build_options
from erc_synth.dataset_scripts.builder import SyntheticConfig, build
from erc_synth.dataset_scripts.core import build_defaults as d
from erc_synth.dataset_scripts.gates import GateOptions
from erc_synth.hub_cards.card import LABEL_POLICIES as CARD_POLICIES
from erc_synth.hub_cards.folder import build_folder
from erc_synth.preset_schema import AuditSettings, BuildSettings


def test_gate_preset_flag_and_builder_defaults_are_the_one_default():
    gates, preset = GateOptions(), BuildSettings()
    parser = argparse.ArgumentParser()
    _add_build_options(parser)
    flags = parser.parse_args([])
    expected = {"near_dup_threshold": d.NEAR_DUP_THRESHOLD, "gibberish_threshold": d.GIBBERISH_THRESHOLD,
                "gibberish_min_words": d.GIBBERISH_MIN_WORDS, "max_bad_line_share": d.MAX_BAD_LINE_SHARE}
    for name, value in expected.items():
        assert getattr(gates, name) == getattr(preset, name) == getattr(flags, name) == value, name
    assert gates.decontam_ngram == flags.decontam_ngram == d.DECONTAM_NGRAM
    assert gates.decontam_threshold == flags.decontam_threshold == d.DECONTAM_THRESHOLD
    assert preset.split_seed == flags.split_seed == d.DEFAULT_SPLIT_SEED
    assert preset.ratios == tuple(float(r) for r in flags.ratios.split(",")) == d.DEFAULT_RATIOS
    assert SyntheticConfig.split_seed == d.DEFAULT_SPLIT_SEED and SyntheticConfig.ratios == d.DEFAULT_RATIOS
    for function in (build, build_folder):
        assert inspect.signature(function).parameters["split_seed"].default == d.DEFAULT_SPLIT_SEED
    assert {f.name for f in dataclasses.fields(GateOptions)} >= set(expected)


def test_label_policies_have_one_list_and_one_default():
    parser = argparse.ArgumentParser()
    _add_build_options(parser)
    assert parser.parse_args([]).label_policy == d.DEFAULT_LABEL_POLICY
    assert AuditSettings(judge="train").label_policy == d.DEFAULT_LABEL_POLICY
    assert inspect.signature(build_folder).parameters["label_policy"].default == d.DEFAULT_LABEL_POLICY
    assert tuple(CARD_POLICIES) == d.LABEL_POLICIES and d.DEFAULT_LABEL_POLICY in d.LABEL_POLICIES
