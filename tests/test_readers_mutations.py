"""Property: on mutated benchmark files the readers either read them or raise the project's error, nothing else.

Each example copies a benchmark's committed fixtures, mutates one of its files (the variant's own files or a
sibling read only for ids) by bytes or by lines, and loads the variant. A ``KeyError``, ``IndexError``,
``UnicodeDecodeError`` or any other exception escaping the readers would reach a user as a traceback.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS
from erc_synth.dataset_scripts.readers import DialogueIdWarning, load_reference

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VARIANTS = [(b.name, name) for b in BENCHMARKS.values() for name in b.variants]
#: Bytes that trip parsers: quotes, separators, brackets, newlines, a UTF-8 BOM, invalid UTF-8, C1 controls.
NASTY = st.sampled_from([b'"', b"\t", b",", b"[", b"]", b"{", b"}", b"\n", b"\r", b"\xef\xbb\xbf", b"\xff", b"\xc2\x92",
                         b"null", b"-1", b"\x00"])


def _mutate_bytes(data: bytes, draw) -> bytes:
    if not data:
        return draw(st.binary(max_size=8))
    at = draw(st.integers(0, len(data) - 1))
    kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    if kind == "replace":
        return data[:at] + draw(st.binary(min_size=1, max_size=1) | NASTY) + data[at + 1:]
    if kind == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=6) | NASTY) + data[at:]
    if kind == "delete":
        return data[:at] + data[at + draw(st.integers(1, 12)):]
    return data[:at]


def _mutate_lines(data: bytes, draw) -> bytes:
    lines = data.split(b"\n")
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["drop", "duplicate", "swap", "replace"]))
    if kind == "drop":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[j])
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = draw(st.text(max_size=40)).encode("utf-8", "surrogatepass")
    return b"\n".join(lines)


@pytest.mark.parametrize(("benchmark", "variant"), VARIANTS)
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_readers_raise_only_the_projects_error_on_mutated_files(benchmark: str, variant: str, data) -> None:
    source = FIXTURES / benchmark
    files = sorted(p.name for p in source.iterdir() if p.is_file())
    target = data.draw(st.sampled_from(files), label="file")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / benchmark
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("bad"))
        original = (folder / target).read_bytes()
        mutate = data.draw(st.sampled_from([_mutate_bytes, _mutate_lines]), label="mutation")
        (folder / target).write_bytes(mutate(original, data.draw))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DialogueIdWarning)
            try:
                loaded = load_reference(benchmark, Path(tmp), variant=variant)
            except ErcSynthError:
                return
    assert set(loaded) <= {"train", "validation", "test"}
    for split in loaded.values():
        assert all(len(s) == len(u) == len(e) for s, u, e in zip(split["speakers"], split["utterances"],
                                                                  split["emotions"], strict=True))
