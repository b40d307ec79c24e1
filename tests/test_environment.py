"""The real-data folder's environment variable: one canonical name, a warned alias, empty values refused."""

from __future__ import annotations

import pytest

from erc_synth.dataset_scripts.core.environment import REAL_DATA_ENV, env_value, real_data_env
from erc_synth.dataset_scripts.core.errors import ErcSynthError


def test_canonical_name_wins_over_the_deprecated_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REAL_DATA_ENV, "/data/new")
    monkeypatch.setenv("ERC_SYNTH_SHARED_DATA", "/data/old")
    assert real_data_env() == "/data/new"


def test_deprecated_alias_is_read_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REAL_DATA_ENV, raising=False)
    monkeypatch.setenv("ERC_SYNTH_SHARED_DATA", "/data/old")
    with pytest.warns(FutureWarning, match="ERC_SYNTH_SHARED_DATA is deprecated; set ERC_SYNTH_REAL_DATA"):
        assert real_data_env() == "/data/old"
    with pytest.warns(FutureWarning):  # a config that still says ${ERC_SYNTH_SHARED_DATA} keeps working
        assert env_value("ERC_SYNTH_SHARED_DATA") == "/data/old"


def test_unset_is_none_and_empty_is_an_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REAL_DATA_ENV, raising=False)
    monkeypatch.delenv("ERC_SYNTH_SHARED_DATA", raising=False)
    assert real_data_env() is None
    monkeypatch.setenv(REAL_DATA_ENV, "  ")
    with pytest.raises(ErcSynthError, match=r"config benchmarks\.meld: environment variable ERC_SYNTH_REAL_DATA is"):
        env_value(REAL_DATA_ENV, where="config benchmarks.meld")


def test_the_endpoint_token_is_read_from_its_own_variable_only(monkeypatch) -> None:
    from erc_synth.dataset_scripts.core.environment import ENDPOINT_TOKEN_ENV, endpoint_token

    monkeypatch.setenv("HF_TOKEN", "hf_hub_token")
    monkeypatch.delenv(ENDPOINT_TOKEN_ENV, raising=False)
    assert endpoint_token() is None  # the Hub token is never taken for it
    monkeypatch.setenv(ENDPOINT_TOKEN_ENV, " sk-local \n")
    assert endpoint_token() == "sk-local"
    monkeypatch.setenv(ENDPOINT_TOKEN_ENV, "tok\u00e9n")
    with pytest.raises(ErcSynthError, match="ERC_SYNTH_ENDPOINT_TOKEN must be one word of printable ASCII"):
        endpoint_token()
