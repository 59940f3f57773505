"""Large-term benchmark: a real OTP node echoes big terms through ``pyexample:echo/1`` on another
OTP node and on a philipjose node, in the same run, the two targets taking turns.

Workloads (issue 16):
  tuples   ``rpc:call(T, pyexample, echo, [L])`` with L a list of 10^6 tuples ``{I, a, <<"bin">>}``
           (about 13 MB encoded each way)
  binary   the same with a 100 MB binary

    python3 benchmarks/bench_bigterm.py [--runs 3] [--only tuples,binary]

The driver is a third OTP node (``erl``); it checks that the reply equals what it sent and prints
each run's wall time per echo, then the medians and the median of the per-run ratios (philipjose /
erl). The OTP target serves ``pyexample:echo/1`` from a module compiled here; the philipjose target is
``examples/interop_node.py`` in its own process (its ``PHILIPJOSE_PURE_TERM`` setting is inherited:
``PHILIPJOSE_PURE_TERM=1`` times the pure-Python codec). Needs ``erl``, ``erlc`` and ``epmd``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dist import erl, targets, wait_line

ERLANG = r"""
-module(pyexample).
-export([echo/1, serve/0, drive/1]).

echo(X) -> X.

serve() -> io:format("ready~n"), receive stop -> ok end.

drive([TargetS, What]) ->
    T = list_to_atom(TargetS),
    pong = net_adm:ping(T),
    Term = case What of
        "tuples" -> [{I, a, <<"bin">>} || I <- lists:seq(1, 1000000)];
        "binary" -> binary:copy(<<7>>, 100 * 1024 * 1024)
    end,
    T0 = erlang:monotonic_time(microsecond),
    Reply = rpc:call(T, pyexample, echo, [Term], 600000),
    Us = erlang:monotonic_time(microsecond) - T0,
    Same = Reply =:= Term,
    io:format("RESULT ~s ~s ~p ~p~n", [TargetS, What, Us, Same]),
    halt().
"""

WORKLOADS = ("tuples", "binary")


def echo_once(beam: Path, target: str, what: str, env: dict[str, str]) -> float:
    name = f"bigdrv{os.getpid()}{target[:3]}"
    driver = erl(beam, name, "+hms", "1000000", "-run", "pyexample", "drive", target, what, env=env)
    fields = wait_line(driver, "RESULT").split()
    driver.wait()
    if fields[4] != "true":
        raise RuntimeError(f"{target} echoed a different {what} term")
    return int(fields[3]) / 1e6


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--runs", type=int, default=3, help="how many times each target runs, in turn")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    args = parser.parse_args()
    workloads = [w for w in args.only.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            parser.error(f"unknown workload {w!r} (choose from {', '.join(WORKLOADS)})")
    times: dict[str, list[tuple[float, float]]] = {w: [] for w in workloads}
    with targets("pyexample", ERLANG, "big") as t:
        beam, env, erl_target, py_target = t
        codec = subprocess.run(
            [sys.executable, "-c", "from philipjose import term; print(term.accelerated())"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"philipjose term codec accelerated: {codec}; {args.runs} runs, targets in turn")
        print(f"{'run':<5}{'workload':<10}{'erl -> erl':>14}{'erl -> philipjose':>20}{'ratio':>9}")
        for i in range(1, args.runs + 1):
            for w in workloads:
                e = echo_once(beam, erl_target, w, env)
                p = echo_once(beam, py_target, w, env)
                times[w].append((e, p))
                print(f"{i:<5}{w:<10}{e * 1e3:>11.0f} ms{p * 1e3:>17.0f} ms{p / e:>8.2f}x", flush=True)
    med = statistics.median
    print("medians (per echo, wall time; ratio = median of the per-run ratios):")
    for w, pairs in times.items():
        e, p = med(x for x, _ in pairs), med(y for _, y in pairs)
        ratio = med(y / x for x, y in pairs)
        print(f"     {w:<10}{e * 1e3:>11.0f} ms{p * 1e3:>17.0f} ms{ratio:>8.2f}x")


if __name__ == "__main__":
    main()
