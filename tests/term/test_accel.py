"""The C accelerator against the pure-Python reference, value by value and byte by byte.

(Like every module here it runs twice; the comparisons below switch codecs themselves.) For
generated terms both encoders produce the same bytes; for valid and mutated bytes both decoders give
the same value (same ``repr``: types included) or both raise ``DecodeError``. Plus what only the C
code can get wrong: large inputs, shared atoms, another thread mutating a list being encoded, and
the switches that say and choose which codec runs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from philipjose.term import Atom, DecodeError, Pid, binary_to_term, codec, decode, term_to_binary
from tests.term.strategies import terms
from tests.term.test_fuzz import mutated

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def both() -> Iterator[None]:
    before = codec.accelerated()
    if not codec._use_accelerator(True):
        codec._use_accelerator(before)
        pytest.skip("the C accelerator philipjose.term._speedups is not built")
    yield
    codec._use_accelerator(before)


def _with(accelerated: bool, fn: Callable[[], Any]) -> tuple[str, Any]:
    codec._use_accelerator(accelerated)
    try:
        try:
            value = fn()
        except DecodeError:
            return "DecodeError", None
        return "ok", (repr(value), value)
    finally:
        codec._use_accelerator(True)


def _same(fn: Callable[[], Any]) -> Any:
    fast = _with(True, fn)
    pure = _with(False, fn)
    assert fast[0] == pure[0]
    if fast[1] is not None:
        assert fast[1][0] == pure[1][0]
        return fast[1][1]
    return None


@_SETTINGS
@given(terms, st.booleans())
def test_both_encoders_write_the_same_bytes(both: None, term: Any, compressed: bool) -> None:
    data = _same(lambda: term_to_binary(term, compressed=compressed))
    assert _same(lambda: binary_to_term(data)) == term


@_SETTINGS
@given(mutated())
def test_both_decoders_agree_on_mutated_bytes(both: None, data: bytes) -> None:
    _same(lambda: binary_to_term(data, max_decompressed=1 << 16))
    _same(lambda: decode(data, 0, max_decompressed=1 << 16, container_ratio=3))


@_SETTINGS
@given(st.binary(max_size=64))
def test_both_decoders_agree_on_noise(both: None, noise: bytes) -> None:
    _same(lambda: binary_to_term(b"\x83" + noise))


def test_a_million_tuples_round_trip(both: None) -> None:
    term = [(i, Atom("a"), b"bin") for i in range(1_000_000)]
    data = _same(lambda: term_to_binary(term))
    assert binary_to_term(data) == term
    assert binary_to_term(data)[999_999][1] is Atom("a")  # atoms come out shared


def test_deep_nesting_round_trips(both: None) -> None:
    term: Any = []
    for _ in range(200_000):
        term = [term]
    data = _same(lambda: term_to_binary(term))
    assert len(data) == 1 + 200_000 * 5 + 200_001  # LIST_EXT headers, then the nils
    out = binary_to_term(data)
    for _ in range(200_000):
        (out,) = out
    assert out == []


def test_truncated_big_term_raises_decode_error(both: None) -> None:
    data = term_to_binary([(i, Pid("a@b", i, 0, 1), {b"k": i}) for i in range(10_000)])
    for cut in (2, 7, len(data) // 3, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError):
            binary_to_term(data[:cut])


def test_a_list_mutated_by_another_thread_is_refused_not_a_crash(both: None) -> None:
    victim = list(range(300, 2_000_300))
    stop = threading.Event()

    def shrink() -> None:
        while not stop.is_set() and victim:
            del victim[-1000:]

    thread = threading.Thread(target=shrink)
    thread.start()
    try:
        for _ in range(5):
            with contextlib.suppress(RuntimeError):  # "list changed size during encoding"
                term_to_binary(victim)
    finally:
        stop.set()
        thread.join()


def _accelerated_in_child(env: dict[str, str]) -> str:
    code = "from philipjose import term; print(term.accelerated())"
    return subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_environment_variable_forces_the_pure_codec(both: None) -> None:
    assert _accelerated_in_child({"PHILIPJOSE_PURE_TERM": "1"}) == "False"
    assert _accelerated_in_child({"PHILIPJOSE_PURE_TERM": ""}) == "True"
