"""Big messages and the traffic around them (issue 16): a real OTP node echoes a 100 MB binary through
another OTP node and through a philipjose node, in the same run, the two targets taking turns, while
one of its processes times small round trips (``net_adm:ping``, a ``gen_server:call`` to the target's
``net_kernel`` over the same connection) every 10 ms.

    python3 benchmarks/bench_fragments.py [--size 100000000] [--runs 3]

For each run and target it prints the echo's wall time and the round trips' count, median and worst;
then the medians over the runs and the median of the per-run ratios (philipjose / erl). The OTP
target echoes with a plain ``receive {From, M} -> From ! M`` process; the philipjose target is
``examples/interop_node.py`` in its own process. Needs ``erl``, ``erlc`` and ``epmd``; loopback, a
private ``epmd`` port.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dist import erl, targets, wait_line

ERLANG = r"""
-module(pj_frag).
-export([serve/0, drive/1]).

serve() ->
    register(echo, spawn(fun echo/0)),
    io:format("ready~n"),
    receive stop -> ok end.

echo() -> receive {From, Msg} -> From ! Msg, echo() end.

drive([TargetS, SizeS]) ->
    T = list_to_atom(TargetS), Size = list_to_integer(SizeS),
    pong = net_adm:ping(T),
    B = binary:copy(<<"0123456789abcdef">>, Size div 16),
    {echo, T} ! {self(), warm}, receive warm -> ok end,
    Me = self(),
    Pinger = spawn(fun() -> pings(T, Me, []) end),
    T0 = erlang:monotonic_time(microsecond),
    {echo, T} ! {self(), {big, B}},
    Back = receive {big, X} -> X after 600000 -> timeout end,
    Us = erlang:monotonic_time(microsecond) - T0,
    Pinger ! stop,
    Rtts = receive {rtts, R} -> lists:sort(R) end,
    {Median, Worst} = case Rtts of
        [] -> {0, 0};  % an echo quicker than the first ping (a small --size)
        _ -> {lists:nth((length(Rtts) + 1) div 2, Rtts), lists:last(Rtts)}
    end,
    io:format("RESULT ~s ~p ~p ~p ~p ~p~n", [TargetS, Back =:= B, Us, length(Rtts), Median, Worst]),
    halt().

pings(T, Me, Acc) ->
    receive stop -> Me ! {rtts, Acc}
    after 10 ->
        T0 = erlang:monotonic_time(microsecond),
        pong = net_adm:ping(T),
        pings(T, Me, [erlang:monotonic_time(microsecond) - T0 | Acc])
    end.
"""

LABELS = ("erl -> erl", "erl -> philipjose")


def drive(beam: Path, target: str, size: int, env: dict[str, str]) -> tuple[float, int, float, float]:
    """(echo seconds, round trips, median ms, worst ms) of one echo of ``size`` bytes via ``target``."""
    driver = erl(beam, f"fragdrv{os.getpid()}", "-run", "pj_frag", "drive", target, str(size), env=env)
    fields = wait_line(driver, "RESULT").split()
    driver.wait()
    _, _, intact, us, count, median, worst = fields
    if intact != "true":
        raise RuntimeError(f"the echo through {target} did not come back intact")
    return int(us) / 1e6, int(count), int(median) / 1000, int(worst) / 1000


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--size", type=int, default=100_000_000, help="bytes of the binary echoed")
    parser.add_argument("--runs", type=int, default=3, help="how many times each target runs, in turn")
    args = parser.parse_args()
    runs: list[tuple[tuple[float, int, float, float], ...]] = []
    with targets("pj_frag", ERLANG, "frag") as t:
        beam, env, erl_target, py_target = t
        print(
            f"workload: a {args.size:,}-byte binary echoed; net_adm:ping every 10 ms meanwhile; "
            f"{args.runs} runs, targets in turn"
        )
        print(f"{'run':<5}{'driver -> target':<22}{'echo s':>9}{'pings':>7}{'median ms':>11}{'worst ms':>10}")
        for i in range(1, args.runs + 1):
            run = (drive(beam, erl_target, args.size, env), drive(beam, py_target, args.size, env))
            runs.append(run)
            for label, (secs, count, median, worst) in zip(LABELS, run, strict=True):
                print(f"{i:<5}{label:<22}{secs:>9.2f}{count:>7}{median:>11.1f}{worst:>10.1f}", flush=True)
    med = statistics.median
    print("medians:")
    for k, label in enumerate(LABELS):
        secs = med(r[k][0] for r in runs)
        median = med(r[k][2] for r in runs)
        worst = med(r[k][3] for r in runs)
        print(f"     {label:<22}{secs:>9.2f}{'':>7}{median:>11.1f}{worst:>10.1f}")
    ratio = med(r[1][0] / r[0][0] for r in runs)
    worst_all = max(r[1][3] for r in runs)
    print(
        f"philipjose / erl echo time (median of per-run ratios): {ratio:.2f}x; "
        f"philipjose's worst round trip over all runs: {worst_all:.1f} ms "
        f"(erl's: {max(r[0][3] for r in runs):.1f} ms)"
    )


if __name__ == "__main__":
    main()
