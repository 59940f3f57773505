"""Distribution benchmark: a real OTP node drives the same workload against another OTP node and
against a philipjose node, in the same run; then philipjose drives it against the OTP node.

Workload (issue 5): N one-way messages ``{row, 1, <<32 bytes>>, 2.5, [1,2,3]}`` to a registered
``sink`` (timed until the sink's count comes back), then R ping-pong round trips with ``echo``.

    python3 benchmarks/bench_dist.py [--messages 200000] [--round-trips 20000] [--runs 5]

The three drivers (erl -> erl, erl -> philipjose, philipjose -> erl) take turns, ``--runs`` times, so
that a slow spell of the machine hits all of them; each run's figures are printed, then the medians
and the median of the per-run ratios (round trips on a VM swing with the cost of waking idle CPUs).

Needs ``erl``, ``erlc`` and ``epmd``. Everything runs on loopback with a private ``epmd`` port. The
philipjose node is ``examples/interop_node.py`` in its own process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
COOKIE = "bench-cookie"

ERLANG = r"""
-module(pj_bench).
-export([serve/0, drive/1]).

serve() ->
    register(sink, spawn(fun() -> sink(0) end)),
    register(echo, spawn(fun echo/0)),
    io:format("ready~n"),
    receive stop -> ok end.

sink(N) -> receive {count, From} -> From ! {count, N}, sink(0); _ -> sink(N + 1) end.
echo() -> receive {From, Msg} -> From ! Msg, echo() end.

drive([TargetS, NS, RS]) ->
    T = list_to_atom(TargetS), N = list_to_integer(NS), R = list_to_integer(RS),
    pong = net_adm:ping(T),
    Msg = {row, 1, <<0:256>>, 2.5, [1, 2, 3]},
    oneway(T, Msg, 1000), pingpong(T, 100),                      % warm-up
    {OneUs, Count} = oneway(T, Msg, N),
    PingUs = pingpong(T, R),
    io:format("RESULT ~s ~p ~p ~p ~p ~p~n", [TargetS, N, OneUs, Count, R, PingUs]),
    halt().

oneway(T, Msg, N) ->
    T0 = erlang:monotonic_time(microsecond),
    send_n({sink, T}, Msg, N),
    {sink, T} ! {count, self()},
    Count = receive {count, C} -> C after 600000 -> timeout end,
    {erlang:monotonic_time(microsecond) - T0, Count}.

send_n(_, _, 0) -> ok;
send_n(Dest, Msg, N) -> Dest ! Msg, send_n(Dest, Msg, N - 1).

pingpong(T, R) ->
    T0 = erlang:monotonic_time(microsecond),
    pingpong_loop({echo, T}, R),
    erlang:monotonic_time(microsecond) - T0.

pingpong_loop(_, 0) -> ok;
pingpong_loop(Dest, N) ->
    Dest ! {self(), N},
    receive N -> pingpong_loop(Dest, N - 1) after 60000 -> exit(timeout) end.
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_line(proc: subprocess.Popen[str], word: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if word in line:
            return line
    raise RuntimeError(f"{proc.args!r} exited before printing {word!r}")


def erl(beam: Path, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = ["erl", "-noshell", "-sname", name, "-setcookie", COOKIE, "-pa", str(beam), *args]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)


class Targets(NamedTuple):
    """What :func:`targets` started: compiled beams, the environment, the two target node names."""

    beam: Path
    env: dict[str, str]
    erl: str
    py: str


@contextlib.contextmanager
def targets(module: str, source: str, prefix: str) -> Iterator[Targets]:
    """A private ``epmd``, an OTP node running ``module:serve()`` (``source`` compiled with ``erlc``)
    and ``examples/interop_node.py``, both printing ``ready`` once up; all killed on leaving."""
    env = dict(os.environ, ERL_EPMD_PORT=str(free_port()), PYTHONPATH=str(ROOT))
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        beam = Path(tmp)
        (beam / f"{module}.erl").write_text(source)
        subprocess.run(["erlc", "-o", str(beam), str(beam / f"{module}.erl")], check=True)
        try:
            procs.append(subprocess.Popen(["epmd", "-port", env["ERL_EPMD_PORT"]], env=env))
            time.sleep(0.5)  # a benchmark, not a test: give epmd a moment to listen
            erl_target = f"erl{prefix}{os.getpid()}@localhost"
            py_target = f"py{prefix}{os.getpid()}@localhost"
            procs.append(erl(beam, erl_target, "-run", module, "serve", env=env))
            wait_line(procs[-1], "ready")
            interop = [sys.executable, str(ROOT / "examples" / "interop_node.py"), py_target, COOKIE]
            procs.append(subprocess.Popen(interop, env=env, stdout=subprocess.PIPE, text=True))
            wait_line(procs[-1], "ready")
            yield Targets(beam, env, erl_target, py_target)
        finally:
            for proc in reversed(procs):
                proc.kill()
                proc.wait()


def drive_from_erl(beam: Path, target: str, n: int, r: int, env: dict[str, str]) -> tuple[float, float, int]:
    name = f"drv{os.getpid()}{target[:4]}"
    driver = erl(beam, name, "-run", "pj_bench", "drive", target, str(n), str(r), env=env)
    fields = wait_line(driver, "RESULT").split()
    driver.wait()
    _, _, n_s, one_us, count, r_s, ping_us = fields
    return int(n_s) / (int(one_us) / 1e6), int(r_s) / (int(ping_us) / 1e6), int(count)


def drive_from_python(
    target: str, n: int, r: int, env: dict[str, str], *, name: str = "pydrv", tls: str = "None"
) -> tuple[float, float, int]:
    """A philipjose node (``name``, TLS from the Python expression ``tls``) drives the workload."""
    code = f"""
import time, philipjose as pj
from philipjose import Atom
from philipjose.node import tls_config
T = {target!r}
async def main():
    assert await pj.node.ping(T)
    msg = (Atom("row"), 1, bytes(32), 2.5, [1, 2, 3])
    me = pj.self()
    async def oneway(n):
        t0 = time.perf_counter()
        for _ in range(n):
            pj.send(("sink", T), msg)
        pj.send(("sink", T), (Atom("count"), me))
        reply = await pj.receive(timeout=600)
        return time.perf_counter() - t0, reply[1]
    async def pingpong(r):
        t0 = time.perf_counter()
        for i in range(r):
            pj.send(("echo", T), (me, i))
            await pj.receive(timeout=60)
        return time.perf_counter() - t0
    await oneway(1000); await pingpong(100)
    one, count = await oneway({n})
    ping = await pingpong({r})
    print("RESULT", {n} / one, {r} / ping, count, flush=True)
pj.run(main, node="{name}{os.getpid()}@localhost", cookie={COOKIE!r}, listen_host="127.0.0.1", tls={tls})
"""
    argv = [sys.executable, "-c", code]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    fields = wait_line(proc, "RESULT").split()
    proc.wait()
    return float(fields[1]), float(fields[2]), int(fields[3])


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--round-trips", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5, help="how many times each driver runs, in turn")
    args = parser.parse_args()
    n, r = args.messages, args.round_trips
    runs: list[tuple[tuple[float, float, int], ...]] = []
    with targets("pj_bench", ERLANG, "target") as t:
        beam, env, erl_target, py_target = t
        print(
            f"workload: {n} one-way messages {{row, 1, <<32 bytes>>, 2.5, [1,2,3]}}, "
            f"{r} ping-pong round trips; {args.runs} runs, drivers in turn"
        )
        print(f"{'run':<5}{'driver -> target':<22}{'one-way msg/s':>16}{'round trips/s':>16}  sink count")
        for i in range(1, args.runs + 1):
            run = (
                drive_from_erl(beam, erl_target, n, r, env),
                drive_from_erl(beam, py_target, n, r, env),
                drive_from_python(erl_target, n, r, env),
            )
            runs.append(run)
            for label, (one, ping, count) in zip(LABELS, run, strict=True):
                print(f"{i:<5}{label:<22}{one:>16,.0f}{ping:>16,.0f}  {count}", flush=True)
            e, p, x = run
            print(
                f"{'':<5}philipjose/erl: one-way {p[0] / e[0]:.1%}, ping-pong {p[1] / e[1]:.1%}; "
                f"philipjose driving: one-way {x[0] / e[0]:.1%}, ping-pong {x[1] / e[1]:.1%}",
                flush=True,
            )
    med = statistics.median
    print("medians:")
    for k, label in enumerate(LABELS):
        one, ping = med(run[k][0] for run in runs), med(run[k][1] for run in runs)
        print(f"     {label:<22}{one:>16,.0f}{ping:>16,.0f}")
    one_ratio = med(run[1][0] / run[0][0] for run in runs)
    ping_ratios = sorted(run[1][1] / run[0][1] for run in runs)
    print(
        f"philipjose/erl (erl driving), median of the per-run ratios: one-way {one_ratio:.1%} "
        f"(target >= 25%), ping-pong {med(ping_ratios):.1%} (target >= 50%; "
        f"per run {', '.join(f'{x:.0%}' for x in ping_ratios)})"
    )
    x_one, x_ping = med(r[2][0] / r[0][0] for r in runs), med(r[2][1] / r[0][1] for r in runs)
    print(f"philipjose driving erl vs erl driving erl, median: one-way {x_one:.1%}, ping-pong {x_ping:.1%}")


LABELS = ("erl -> erl", "erl -> philipjose", "philipjose -> erl")


if __name__ == "__main__":
    main()
