"""Back-pressure benchmark (issue 13): the code before back-pressure against the current code, in the
same run, on the same workloads, taking turns.

    python3 benchmarks/bench_backpressure.py [--baseline REV] [--runs 7] [--messages 200000]
                                             [--dist-messages 200000] [--no-dist]

``--baseline`` (default: the parent of the commit that added ``dist_buf_busy_limit``) is extracted
with ``git archive`` into a temporary directory; each side runs in its own interpreter with its own
tree first on ``sys.path``. The sides alternate ``--runs`` times (A, B, A, B, ...) so that a slow
spell of the shared machine hits both; the script prints every run, the medians and the median of
the per-run ratios (current / baseline).

Workloads:

- local one-way: ``--messages`` ``pj.send`` to one local receiver that counts them (CPU seconds of
  the process, best of 3 inside each run);
- local ping-pong: 50,000 round trips between two processes (CPU seconds, best of 3);
- distribution one-way, philipjose -> erl: a philipjose node sends ``--dist-messages`` messages
  ``{row, 1, <<32 bytes>>, 2.5, [1,2,3]}`` to a registered ``sink`` on a real OTP node, timed until
  the sink's count comes back (the driver of ``bench_dist.py``), in wall time and in CPU seconds of
  the sending process (steadier on a shared machine: what the send path costs);
- the remote send path alone: the best time of a batch of 1,000 ``pj.send`` of that message to the
  OTP sink (over 300 batches, each drained before the next, so the connection is never busy): what
  one remote send costs, least disturbed by other load;
- distribution one-way, erl -> philipjose: an OTP node sends them to the philipjose node's sink
  (``examples/interop_node.py`` of each side).

Needs ``git``; the distribution workloads need ``erl``, ``erlc`` and ``epmd`` (loopback, private
EPMD port).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dist import COOKIE, ERLANG, ROOT, drive_from_erl, erl, free_port, wait_line

LOCAL = r"""
import sys, time, philipjose as pj
N, R = int(sys.argv[1]), int(sys.argv[2])

async def sink(n, parent):
    for _ in range(n):
        await pj.receive()
    pj.send(parent, "done")

async def echo():
    while True:
        sender, m = await pj.receive()
        pj.send(sender, m)

async def oneway():
    me = pj.self()
    pid = pj.spawn(sink, N, me)
    t0 = time.process_time()
    for i in range(N):
        pj.send(pid, i)
    await pj.receive()
    return time.process_time() - t0

async def pingpong():
    me = pj.self()
    pid = pj.spawn(echo)
    t0 = time.process_time()
    for i in range(R):
        pj.send(pid, (me, i))
        await pj.receive()
    t = time.process_time() - t0
    pj.exit(pid, "kill")
    return t

async def main():
    one = min([await oneway() for _ in range(3)])
    ping = min([await pingpong() for _ in range(3)])
    print("RESULT", N / one, R / ping, pj.__file__, flush=True)

pj.run(main)
"""

DIST = r"""
import sys, time, philipjose as pj
from philipjose import Atom
T, N = sys.argv[1], int(sys.argv[2])
async def main():
    assert await pj.node.ping(T)
    msg = (Atom("row"), 1, bytes(32), 2.5, [1, 2, 3])
    me = pj.self()
    async def oneway(n):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            pj.send(("sink", T), msg)
        pj.send(("sink", T), (Atom("count"), me))
        reply = await pj.receive(timeout=600)
        return time.perf_counter() - t0, time.process_time() - c0, reply[1]
    await oneway(1000)
    one, cpu, count = await oneway(N)
    print("RESULT", N / one, count, N / cpu, flush=True)
pj.run(main, node=sys.argv[3], cookie=sys.argv[4], listen_host="127.0.0.1")
"""


SEND_PATH = r"""
import sys, time, philipjose as pj
from philipjose import Atom
T, BATCHES = sys.argv[1], int(sys.argv[2])
async def main():
    assert await pj.node.ping(T)
    msg = (Atom("row"), 1, bytes(32), 2.5, [1, 2, 3])
    me = pj.self()
    clock = time.perf_counter
    best = float("inf")
    for _ in range(BATCHES):
        t0 = clock()
        for _ in range(1000):
            pj.send(("sink", T), msg)
        best = min(best, clock() - t0)
        pj.send(("sink", T), (Atom("count"), me))
        await pj.receive(timeout=600)  # the batch has been written and counted: the queue is empty
    print("RESULT", best / 1000 * 1e6, flush=True)
pj.run(main, node=sys.argv[3], cookie=sys.argv[4], listen_host="127.0.0.1")
"""


def default_baseline() -> str:
    out = subprocess.run(
        [
            "git",
            "log",
            "--format=%H",
            "--reverse",
            "-S",
            "DEFAULT_DIST_BUF_BUSY_LIMIT",
            "--",
            "philipjose/node/node.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not out:
        raise SystemExit("cannot find the commit that added dist_buf_busy_limit: give --baseline")
    return f"{out[0]}^"


def extract(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", rev, "philipjose", "examples"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def side_env(tree: Path, epmd_port: int | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    if epmd_port is not None:
        env["ERL_EPMD_PORT"] = str(epmd_port)
    return env


def run_local(tree: Path, n: int, r: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", LOCAL, str(n), str(r)],
        cwd=tree,
        env=side_env(tree),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    assert Path(fields[3]).resolve().is_relative_to(tree.resolve()), f"imported {fields[3]}, not {tree}"
    return float(fields[1]), float(fields[2])


def run_py_to_erl(tree: Path, target: str, n: int, epmd_port: int) -> tuple[float, float]:
    name = f"bpdrv{os.getpid()}@localhost"
    argv = [sys.executable, "-c", DIST, target, str(n), name, COOKIE]
    proc = subprocess.Popen(argv, cwd=tree, env=side_env(tree, epmd_port), stdout=subprocess.PIPE, text=True)
    fields = wait_line(proc, "RESULT").split()
    proc.wait()
    assert int(fields[2]) == n, fields
    return float(fields[1]), float(fields[3])


def run_send_path(tree: Path, target: str, batches: int, epmd_port: int) -> float:
    name = f"bppath{os.getpid()}@localhost"
    argv = [sys.executable, "-c", SEND_PATH, target, str(batches), name, COOKIE]
    proc = subprocess.Popen(argv, cwd=tree, env=side_env(tree, epmd_port), stdout=subprocess.PIPE, text=True)
    fields = wait_line(proc, "RESULT").split()
    proc.wait()
    return float(fields[1])


def run_erl_to_py(tree: Path, beam: Path, n: int, epmd_port: int) -> float:
    target = f"bptarget{os.getpid()}@localhost"
    env = side_env(tree, epmd_port)
    py = subprocess.Popen(
        [sys.executable, str(tree / "examples" / "interop_node.py"), target, COOKIE],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_line(py, "ready")
        one, _ping, count = drive_from_erl(beam, target, n, 10, env)
        assert count == n, count
        return one
    finally:
        py.kill()
        py.wait()


def report(title: str, rows: list[tuple[float, float]]) -> None:
    med = statistics.median
    ratios = [b / a for a, b in rows]
    print(
        f"{title}: baseline median {med(a for a, _ in rows):,.0f}/s, current median "
        f"{med(b for _, b in rows):,.0f}/s, median ratio {med(ratios):.1%} "
        f"(runs {', '.join(f'{x:.1%}' for x in ratios)})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default=None, help="git revision to compare with")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--round-trips", type=int, default=50_000)
    parser.add_argument("--dist-messages", type=int, default=200_000)
    parser.add_argument("--no-dist", action="store_true", help="only the local workloads")
    parser.add_argument("--no-local", action="store_true", help="only the distribution workloads")
    args = parser.parse_args()
    baseline = args.baseline or default_baseline()
    with tempfile.TemporaryDirectory() as tmp:
        old = extract(baseline, Path(tmp) / "baseline")
        new = ROOT
        print(f"baseline {baseline} ({old}) vs current {new}; {args.runs} runs, sides in turn", flush=True)
        one: list[tuple[float, float]] = []
        ping: list[tuple[float, float]] = []
        for i in range(1, 0 if args.no_local else args.runs + 1):
            sides = [old, new] if i % 2 else [new, old]  # alternate which side goes first
            got = {side: run_local(side, args.messages, args.round_trips) for side in sides}
            a, b = got[old], got[new]
            one.append((a[0], b[0]))
            ping.append((a[1], b[1]))
            print(
                f"run {i}: local one-way {a[0]:,.0f} -> {b[0]:,.0f} msg/s ({b[0] / a[0]:.1%}), "
                f"ping-pong {a[1]:,.0f} -> {b[1]:,.0f} /s ({b[1] / a[1]:.1%})",
                flush=True,
            )
        if one:
            report("local one-way pj.send", one)
            report("local ping-pong", ping)
        if args.no_dist:
            return
        epmd_port = free_port()
        env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port))
        procs: list[subprocess.Popen[str]] = []
        beam = Path(tmp) / "beam"
        beam.mkdir()
        (beam / "pj_bench.erl").write_text(ERLANG)
        subprocess.run(["erlc", "-o", str(beam), str(beam / "pj_bench.erl")], check=True)
        try:
            procs.append(subprocess.Popen(["epmd", "-port", str(epmd_port)], env=env))
            time.sleep(0.5)  # a benchmark, not a test: give epmd a moment to listen
            erl_target = f"bperl{os.getpid()}@localhost"
            target = erl(beam, erl_target, "-run", "pj_bench", "serve", env=env)
            procs.append(target)
            wait_line(target, "ready")
            path: list[tuple[float, float]] = []
            for i in range(1, args.runs + 1):
                sides = [old, new] if i % 2 else [new, old]
                took = {side: run_send_path(side, erl_target, 300, epmd_port) for side in sides}
                path.append((1 / took[old], 1 / took[new]))
                print(
                    f"run {i}: pj.send to erl, best of 300 batches of 1,000: {took[old]:.2f} -> "
                    f"{took[new]:.2f} us per send ({took[old] / took[new]:.1%} of the baseline's rate)",
                    flush=True,
                )
            report("pj.send to a remote node (per microsecond)", path)
            out: list[tuple[float, float]] = []
            out_cpu: list[tuple[float, float]] = []
            into: list[tuple[float, float]] = []
            n = args.dist_messages
            for i in range(1, args.runs + 1):
                sides = [old, new] if i % 2 else [new, old]
                got = {
                    side: (
                        run_py_to_erl(side, erl_target, n, epmd_port),
                        run_erl_to_py(side, beam, n, epmd_port),
                    )
                    for side in sides
                }
                (a_out, a_in), (b_out, b_in) = got[old], got[new]
                out.append((a_out[0], b_out[0]))
                out_cpu.append((a_out[1], b_out[1]))
                into.append((a_in, b_in))
                print(
                    f"run {i}: philipjose -> erl one-way {a_out[0]:,.0f} -> {b_out[0]:,.0f} msg/s "
                    f"({b_out[0] / a_out[0]:.1%}; per CPU second {a_out[1]:,.0f} -> {b_out[1]:,.0f}, "
                    f"{b_out[1] / a_out[1]:.1%}), erl -> philipjose {a_in:,.0f} -> {b_in:,.0f} msg/s "
                    f"({b_in / a_in:.1%})",
                    flush=True,
                )
            report("distribution one-way philipjose -> erl", out)
            report("  the same per CPU second of the sender", out_cpu)
            report("distribution one-way erl -> philipjose", into)
        finally:
            for proc in reversed(procs):
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
