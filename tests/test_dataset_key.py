"""``DatasetKey``: one value for a set's identity, with every name made from it and read back by one parser."""

from __future__ import annotations

import pytest

from erc_synth.dataset_scripts.core.dataset_key import DatasetKey, all_keys
from erc_synth.dataset_scripts.core.errors import ErcSynthError


def test_names_are_made_from_the_pair():
    key = DatasetKey("emorynlp", "balanced")
    assert key.config_name == "emorynlp-balanced" == str(key)
    assert key.repo_name == key.folder_name == "emorynlp-synth-balanced"


@pytest.mark.parametrize("key", list(all_keys()), ids=str)
def test_every_name_parses_back_to_its_key(key):
    assert DatasetKey.parse(key.config_name) == key
    assert DatasetKey.parse(key.repo_name) == key


def test_all_keys_are_the_six_sets_in_registry_order():
    assert [k.config_name for k in all_keys()] == [
        "meld-natural", "meld-balanced", "emorynlp-natural", "emorynlp-balanced", "iemocap-natural",
        "iemocap-balanced"]


@pytest.mark.parametrize("name", ["meld", "meld-synth", "meld-natural-x", "friends-natural", "meld-Natural",
                                  "meld-synth-synth-natural", ""])
def test_a_name_of_no_set_is_refused_naming_the_value(name):
    with pytest.raises(ErcSynthError, match=f"{name!r} names no synthetic set"):
        DatasetKey.parse(name)


def test_an_unknown_benchmark_or_mode_is_refused():
    with pytest.raises(ErcSynthError, match="unknown benchmark 'friends'"):
        DatasetKey("friends", "natural")
    with pytest.raises(ErcSynthError, match="unknown mode 'skewed'"):
        DatasetKey("meld", "skewed")
