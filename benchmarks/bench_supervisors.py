"""Supervisor benchmark: philipjose.supervisors vs OTP's supervisor (a real ``escript``), same run.

Measures, on both sides:

1. restart latency: a ``one_for_one`` supervisor with one permanent child; the bench process kills
   the child (``exit(Child, kill)``) and waits for the replacement to report that it runs. Mean time
   per kill-to-running cycle over ``--restarts`` cycles.
2. 10,000 dynamic children: a ``simple_one_for_one`` supervisor with a temporary template; time to
   start ``--children`` children with ``start_child`` one after the other, then time to stop the
   supervisor (which stops all its children at once) until its ``DOWN`` arrives.

Supervisor reports are switched off on both sides (``logging.disable`` / ``logger`` level none): the
figures are for the mechanism, not for formatting thousands of log lines. Erlang runs twice: with one
scheduler (``+S 1``, like the single Trio thread) and with the default schedulers.

Run: ``python3 benchmarks/bench_supervisors.py [--restarts 2000] [--children 10000] [--repeat 3]``
(best of ``--repeat`` runs is reported for each figure).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import philipjose as pj
from philipjose import supervisors

ESCRIPT = r"""#!/usr/bin/env escript
%%! {flags}
-mode(compile).
-export([init/1, worker/1]).

init({{restart, Parent}}) ->
    {{ok, {{#{{strategy => one_for_one, intensity => 1000000000, period => 1}},
          [#{{id => w, start => {{?MODULE, worker, [Parent]}}}}]}}}};
init(dynamic) ->
    {{ok, {{#{{strategy => simple_one_for_one, intensity => 0, period => 1}},
          [#{{id => w, start => {{?MODULE, worker, [none]}}, restart => temporary}}]}}}}.

worker(Parent) ->
    Pid = spawn_link(fun() ->
        case Parent of none -> ok; _ -> Parent ! {{started, self()}} end,
        receive stop -> ok end
    end),
    {{ok, Pid}}.

main([NRestarts, NChildren]) ->
    process_flag(trap_exit, true),
    logger:set_primary_config(level, none),
    R = list_to_integer(NRestarts),
    C = list_to_integer(NChildren),
    Self = self(),
    {{ok, Sup}} = supervisor:start_link(?MODULE, {{restart, Self}}),
    First = receive {{started, P0}} -> P0 end,
    T0 = erlang:monotonic_time(nanosecond),
    restarts(R, First),
    T1 = erlang:monotonic_time(nanosecond),
    unlink(Sup), exit(Sup, shutdown),
    {{ok, Dyn}} = supervisor:start_link(?MODULE, dynamic),
    T2 = erlang:monotonic_time(nanosecond),
    start_many(C, Dyn),
    T3 = erlang:monotonic_time(nanosecond),
    C = proplists:get_value(active, supervisor:count_children(Dyn)),
    Ref = monitor(process, Dyn),
    unlink(Dyn), exit(Dyn, shutdown),
    receive {{'DOWN', Ref, process, Dyn, _}} -> ok end,
    T4 = erlang:monotonic_time(nanosecond),
    io:format("restart_s ~.9f~nstart_s ~.9f~nstop_s ~.9f~n",
              [(T1 - T0) / R / 1.0e9, (T3 - T2) / 1.0e9, (T4 - T3) / 1.0e9]).

restarts(0, _) -> ok;
restarts(N, Pid) ->
    exit(Pid, kill),
    receive {{started, New}} -> restarts(N - 1, New) end.

start_many(0, _) -> ok;
start_many(N, Sup) -> {{ok, _}} = supervisor:start_child(Sup, []), start_many(N - 1, Sup).
"""


async def _reporting_worker(parent: Any) -> None:
    pj.send(parent, ("started", pj.self()))
    await pj.receive(lambda m: False)


async def _idle() -> None:
    await pj.receive(lambda m: False)


async def _bench(restarts: int, children: int) -> dict[str, float]:
    pj.process_flag("trap_exit", True)
    me = pj.self()
    sup = await supervisors.start_link(
        [{"id": "w", "start": (_reporting_worker, me)}], intensity=10**9, period=1
    )
    _, child = await pj.receive(("started", pj.ANY))
    began = time.perf_counter()
    for _ in range(restarts):
        pj.exit(child, "kill")
        _, child = await pj.receive(("started", pj.ANY))
    restart_s = (time.perf_counter() - began) / restarts
    await supervisors.stop(sup)

    dyn = await supervisors.start_link(
        [{"id": "w", "start": _idle, "restart": "temporary"}], strategy="simple_one_for_one", intensity=0
    )
    began = time.perf_counter()
    for _ in range(children):
        await supervisors.start_child(dyn, [])
    started = time.perf_counter()
    counts = await supervisors.count_children(dyn)
    assert counts["active"] == children, counts
    ref = pj.monitor(dyn)
    pj.unlink(dyn)
    pj.exit(dyn, "shutdown")
    await pj.receive(lambda m: type(m) is tuple and len(m) == 5 and m[1] == ref)
    stopped = time.perf_counter()
    return {"restart_s": restart_s, "start_s": started - began, "stop_s": stopped - started}


def _philipjose(restarts: int, children: int) -> dict[str, float]:
    result: dict[str, float] = pj.run(_bench, restarts, children)
    return result


def _erlang(restarts: int, children: int, flags: str) -> dict[str, float] | None:
    escript = shutil.which("escript") or shutil.which("escript", path="/usr/lib/erlang/bin")
    if escript is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench_sup.escript"
        script.write_text(ESCRIPT.format(flags=flags))
        out = subprocess.run(
            [escript, str(script), str(restarts), str(children)],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
    figures = {}
    for line in out.splitlines():
        key, value = line.split()
        figures[key] = float(value)
    return figures


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: min(run[key] for run in runs) for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--restarts", type=int, default=2000)
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)

    py = _best([_philipjose(args.restarts, args.children) for _ in range(args.repeat)])
    erl_runs = {}
    for label, flags in [("erl +S 1", "+S 1"), ("erl (default schedulers)", "")]:
        runs = [_erlang(args.restarts, args.children, flags) for _ in range(args.repeat)]
        if all(r is not None for r in runs):
            erl_runs[label] = _best([r for r in runs if r is not None])

    print(f"python {sys.version.split()[0]}, cpus {os.cpu_count()}, best of {args.repeat}")
    print(f"restarts: {args.restarts}, dynamic children: {args.children}")
    header = f"{'':28}{'restart latency':>18}{'start children':>18}{'stop children':>18}"
    print(header)

    def row(label: str, f: dict[str, float]) -> None:
        restart, start, stop = f["restart_s"] * 1e6, f["start_s"] * 1e3, f["stop_s"] * 1e3
        print(f"{label:28}{restart:>15.1f} us{start:>15.1f} ms{stop:>15.1f} ms")

    row("philipjose", py)
    for label, figures in erl_runs.items():
        row(label, figures)
        keys = ("restart_s", "start_s", "stop_s")
        ratios = "  ".join(f"{key} x{py[key] / figures[key]:.1f}" for key in keys)
        print(f"  philipjose / {label}: {ratios}")
    if not erl_runs:
        print("escript not found: no Erlang figures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
