"""rpc benchmark: round trips per second Erlang -> Python and Python -> Erlang, against erl -> erl
``rpc:call`` in the same run.

A real OTP node drives ``rpc:call(Target, M, F, [1, 2])`` (OTP 25: erpc under the hood, so one
spawn request, one spawned process and one DOWN per call) against another OTP node
(``erlang:max/2``) and against a philipjose node (``pyexample:add/2`` of
``examples/interop_node.py``, in its own process); then a philipjose node drives
``await rpc.call(erl, "erlang", "max", [1, 2])`` against the OTP node. Each driver makes N
sequential calls (one caller: latency-bound), then N calls spread over C concurrent callers.

    python3 benchmarks/bench_rpc.py [--calls 5000] [--concurrency 8]

Needs ``erl``, ``erlc`` and ``epmd``. Everything runs on loopback with a private ``epmd`` port.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dist import free_port, wait_line  # the same helpers as the distribution benchmark

ROOT = Path(__file__).resolve().parents[1]
COOKIE = "bench-rpc-cookie"

ERLANG = r"""
-module(pj_bench_rpc).
-export([serve/0, drive/1]).

serve() -> io:format("ready~n"), receive stop -> ok end.

drive([TargetS, ModS, FunS, NS, CS]) ->
    T = list_to_atom(TargetS), M = list_to_atom(ModS), F = list_to_atom(FunS),
    N = list_to_integer(NS), C = list_to_integer(CS),
    pong = net_adm:ping(T),
    loop(T, M, F, 200),                                        % warm-up
    SeqUs = timed(fun() -> loop(T, M, F, N) end),
    ParUs = timed(fun() -> par(T, M, F, N, C) end),
    io:format("RESULT ~s ~p ~p ~p ~p~n", [TargetS, N, SeqUs, C, ParUs]),
    halt().

timed(Fun) ->
    T0 = erlang:monotonic_time(microsecond),
    Fun(),
    erlang:monotonic_time(microsecond) - T0.

loop(_, _, _, 0) -> ok;
loop(T, M, F, N) ->
    case rpc:call(T, M, F, [1, 2]) of
        {badrpc, R} -> exit({badrpc, R});
        _ -> loop(T, M, F, N - 1)
    end.

par(T, M, F, N, C) ->
    Self = self(),
    Pids = [spawn_link(fun() -> loop(T, M, F, N div C), Self ! {done, self()} end)
            || _ <- lists:seq(1, C)],
    [receive {done, P} -> ok end || P <- Pids],
    ok.
"""

PYTHON_DRIVER = """
import sys, time
import philipjose as pj
from philipjose import Atom, rpc

TARGET, N, C, NAME, COOKIE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]

async def loop(n):
    for _ in range(n):
        assert await rpc.call(TARGET, "erlang", "max", [1, 2], timeout=60) == 2

async def worker(n, parent):
    await loop(n)
    pj.send(parent, Atom("done"))

async def main():
    assert await pj.node.ping(TARGET)
    await loop(200)
    t0 = time.perf_counter()
    await loop(N)
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(C):
        pj.spawn(worker, N // C, pj.self())
    for _ in range(C):
        await pj.receive(match=Atom("done"), timeout=600)
    par = time.perf_counter() - t0
    print("RESULT", N / seq, (N // C) * C / par, flush=True)

pj.run(main, node=NAME, cookie=COOKIE, listen_host="127.0.0.1")
"""


def erl(beam: Path, name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = ["erl", "-noshell", "-sname", name, "-setcookie", COOKIE, "-pa", str(beam), *args]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)


def drive_from_erl(
    beam: Path, target: str, mod: str, fun: str, n: int, c: int, env: dict[str, str]
) -> tuple[float, float]:
    name = f"rpcdrv{os.getpid()}{target[:4]}@localhost"
    driver = erl(beam, name, "-run", "pj_bench_rpc", "drive", target, mod, fun, str(n), str(c), env=env)
    fields = wait_line(driver, "RESULT").split()
    driver.wait()
    _, _, n_s, seq_us, c_s, par_us = fields
    calls = int(n_s)
    return calls / (int(seq_us) / 1e6), (calls // int(c_s)) * int(c_s) / (int(par_us) / 1e6)


def drive_from_python(target: str, n: int, c: int, env: dict[str, str]) -> tuple[float, float]:
    name = f"pyrpcdrv{os.getpid()}@localhost"
    argv = [sys.executable, "-c", PYTHON_DRIVER, target, str(n), str(c), name, COOKIE]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    fields = wait_line(proc, "RESULT").split()
    proc.wait()
    return float(fields[1]), float(fields[2])


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    n, c = args.calls, args.concurrency
    epmd_port = free_port()
    env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port), PYTHONPATH=str(ROOT))
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        beam = Path(tmp)
        (beam / "pj_bench_rpc.erl").write_text(ERLANG)
        subprocess.run(["erlc", "-o", str(beam), str(beam / "pj_bench_rpc.erl")], check=True)
        try:
            procs.append(subprocess.Popen(["epmd", "-port", str(epmd_port)], env=env))
            time.sleep(0.5)  # a benchmark, not a test: give epmd a moment to listen
            erl_target = f"erlrpc{os.getpid()}@localhost"
            py_target = f"pyrpc{os.getpid()}@localhost"
            target = erl(beam, erl_target, "-run", "pj_bench_rpc", "serve", env=env)
            procs.append(target)
            wait_line(target, "ready")
            py = subprocess.Popen(
                [sys.executable, str(ROOT / "examples" / "interop_node.py"), py_target, COOKIE],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(py)
            wait_line(py, "ready")

            e_seq, e_par = drive_from_erl(beam, erl_target, "erlang", "max", n, c, env)
            p_seq, p_par = drive_from_erl(beam, py_target, "pyexample", "add", n, c, env)
            x_seq, x_par = drive_from_python(erl_target, n, c, env)
        finally:
            for proc in reversed(procs):
                proc.kill()
                proc.wait()
    print(f"workload: {n} rpc:call round trips, one caller, then {c} concurrent callers")
    print(f"{'caller -> callee':<28}{'sequential calls/s':>20}{f'{c} callers calls/s':>22}")
    print(f"{'erl -> erl':<28}{e_seq:>20,.0f}{e_par:>22,.0f}")
    print(f"{'erl -> philipjose':<28}{p_seq:>20,.0f}{p_par:>22,.0f}")
    print(f"{'philipjose -> erl':<28}{x_seq:>20,.0f}{x_par:>22,.0f}")
    print(f"erl -> philipjose vs erl -> erl: sequential {p_seq / e_seq:.1%}, concurrent {p_par / e_par:.1%}")
    print(f"philipjose -> erl vs erl -> erl: sequential {x_seq / e_seq:.1%}, concurrent {x_par / e_par:.1%}")


if __name__ == "__main__":
    main()
