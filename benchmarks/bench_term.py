"""Benchmark: philipjose.term against erlang-py 2.0.7 (pure Python) and erlpack 1.0.1 (Cython).

Times encode and decode of the same data with each library in one run and prints the best-of-N
CPU time (``time.process_time``) per operation and the ratios. The libraries are timed round-robin,
batch by batch, so that load from other processes on the machine falls on all of them alike.
Each library gets the data in its own native types (erlang-py needs ``OtpErlangAtom`` and
``OtpErlangBinary`` wrappers, erlpack its ``Atom``); all three are checked to decode the same
bytes before timing. Decoders are timed on philipjose's encoding.

Data sets (from issue 2):
  ok_42     {ok, 42}
  rows      1,000 rows of {atom, int, 32-byte binary, float, [1,2,3]}
  map       a map of 10,000 binary keys to ints
  binary    a 1 MiB binary
  ints      10,000 integers, a few of them bignums (up to 64 bits: erlpack cannot encode more)

Run: ``python3 benchmarks/bench_term.py`` (``--quick`` for fewer repeats).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from philipjose.term import Atom, accelerated, binary_to_term, term_to_binary

try:
    import erlang
except ImportError:  # pragma: no cover - reported in the output
    erlang = None
try:
    import erlpack
except ImportError:  # pragma: no cover - reported in the output
    erlpack = None


def _datasets() -> dict[str, dict[str, Any]]:
    rng = random.Random(42)
    names = [f"atom{i % 7}" for i in range(1000)]
    ints = [rng.randrange(-(2**31), 2**31) for _ in range(1000)]
    bins = [rng.randbytes(32) for _ in range(1000)]
    floats = [rng.random() * 1000 for _ in range(1000)]
    keys = [f"key-{i:06d}".encode() for i in range(10_000)]
    values = [rng.randrange(0, 2**31) for _ in range(10_000)]
    blob = rng.randbytes(1 << 20)
    numbers = [rng.randrange(-(2**31), 2**31) for _ in range(10_000)]
    for i in range(0, 10_000, 1000):
        numbers[i] = rng.randrange(2**40, 2**63)
    numbers[5] = -(2**62)

    ours: dict[str, Any] = {
        "ok_42": (Atom("ok"), 42),
        "rows": [(Atom(n), i, b, f, [1, 2, 3]) for n, i, b, f in zip(names, ints, bins, floats, strict=True)],
        "map": dict(zip(keys, values, strict=True)),
        "binary": blob,
        "ints": numbers,
    }
    sets: dict[str, dict[str, Any]] = {"philipjose": ours}
    if erlang is not None:
        atom = erlang.OtpErlangAtom
        binary = erlang.OtpErlangBinary
        sets["erlang-py"] = {
            "ok_42": (atom(b"ok"), 42),
            "rows": [
                (atom(n.encode()), i, binary(b), f, [1, 2, 3])
                for n, i, b, f in zip(names, ints, bins, floats, strict=True)
            ],
            "map": {binary(k): v for k, v in zip(keys, values, strict=True)},
            "binary": binary(blob),
            "ints": numbers,
        }
    if erlpack is not None:
        atom2 = erlpack.Atom
        sets["erlpack"] = {
            "ok_42": (atom2("ok"), 42),
            "rows": [
                (atom2(n), i, b, f, [1, 2, 3]) for n, i, b, f in zip(names, ints, bins, floats, strict=True)
            ],
            "map": dict(zip(keys, values, strict=True)),
            "binary": blob,
            "ints": numbers,
        }
    return sets


def _codecs() -> dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]]:
    codecs: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
        "philipjose": (term_to_binary, binary_to_term)
    }
    if erlang is not None:
        codecs["erlang-py"] = (erlang.term_to_binary, erlang.binary_to_term)
    if erlpack is not None:
        codecs["erlpack"] = (erlpack.pack, erlpack.unpack)
    return codecs


def _batch_size(fn: Callable[[Any], Any], arg: Any, budget: float) -> int:
    start = time.process_time()
    fn(arg)
    once = max(time.process_time() - start, 1e-6)
    return max(1, int(budget / once))


def _race(
    entries: dict[str, tuple[Callable[[Any], Any], Any]], budget: float, repeats: int
) -> dict[str, float]:
    """Best CPU time per call of each entry, measured round-robin so that load shifts hit all."""
    sizes = {lib: _batch_size(fn, arg, budget) for lib, (fn, arg) in entries.items()}
    best = dict.fromkeys(entries, math.inf)
    for _ in range(repeats):
        for lib, (fn, arg) in entries.items():
            number = sizes[lib]
            start = time.process_time()
            for _ in range(number):
                fn(arg)
            best[lib] = min(best[lib], (time.process_time() - start) / number)
    return best


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    return f"{seconds * 1e3:8.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    args = parser.parse_args(argv)
    budget, repeats = (0.05, 3) if args.quick else (0.1, 15)

    sets = _datasets()
    codecs = _codecs()
    print(f"Python {sys.version.split()[0]}; libraries: {', '.join(codecs)}")
    which = "C accelerator" if accelerated() else "pure Python"
    print(f"philipjose codec: {which} (PHILIPJOSE_PURE_TERM=1 forces the pure one)")
    missing = {"erlang-py", "erlpack"} - set(codecs)
    if missing:
        print(f"not installed (skipped): {', '.join(sorted(missing))}")

    reference = {name: term_to_binary(value) for name, value in sets["philipjose"].items()}
    # Sanity: every library decodes philipjose's bytes and re-encodes a term that decodes alike.
    for lib, (enc, dec) in codecs.items():
        for name, data in reference.items():
            decoded = dec(data)
            again = binary_to_term(enc(sets[lib][name]))
            assert again == binary_to_term(data), (lib, name)
            del decoded

    results: dict[tuple[str, str, str], float] = {}
    for name in reference:
        encoders = {lib: (enc, sets[lib][name]) for lib, (enc, _) in codecs.items()}
        decoders = {lib: (dec, reference[name]) for lib, (_, dec) in codecs.items()}
        for op, entries in (("encode", encoders), ("decode", decoders)):
            for lib, seconds in _race(entries, budget, repeats).items():
                results[(name, lib, op)] = seconds

    libs = list(codecs)
    header = f"{'data':8} {'op':7}" + "".join(f"{lib:>14}" for lib in libs)
    peers = [lib for lib in libs if lib != "philipjose"]
    header += "".join(f"{'vs ' + lib:>16}" for lib in peers)
    print(header)
    ratios: dict[tuple[str, str], list[float]] = {
        (lib, op): [] for lib in peers for op in ("encode", "decode")
    }
    for name in reference:
        for op in ("encode", "decode"):
            line = f"{name:8} {op:7}" + "".join(f"{_fmt(results[(name, lib, op)]):>14}" for lib in libs)
            ours = results[(name, "philipjose", op)]
            for lib in peers:
                ratio = results[(name, lib, op)] / ours
                ratios[(lib, op)].append(ratio)
                line += f"{ratio:>15.2f}x"
            print(line)
    print()
    for lib in peers:
        enc_ratios = ratios[(lib, "encode")]
        dec_ratios = ratios[(lib, "decode")]
        geo = math.exp(sum(map(math.log, enc_ratios + dec_ratios)) / len(enc_ratios + dec_ratios))
        geo_e = math.exp(sum(map(math.log, enc_ratios)) / len(enc_ratios))
        geo_d = math.exp(sum(map(math.log, dec_ratios)) / len(dec_ratios))
        print(
            f"philipjose vs {lib}: geometric mean speedup {geo:.2f}x "
            f"(encode {geo_e:.2f}x, decode {geo_d:.2f}x); >1 means philipjose is faster"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
