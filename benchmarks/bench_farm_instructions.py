"""What the farmer executes per trivial task, counted by valgrind (instructions, not time), so that the
machine's load does not move the figure: a 2-core machine shared with other work turns wall-clock
and even CPU-time figures of a 30 us cost into noise.

    python benchmarks/bench_farm_instructions.py [--batches 4] [--only plain,journal]

For each case the script runs a farmer under ``valgrind --tool=callgrind`` (the workers run natively:
``--trace-children=no``): once its farm is up and warmed, it runs ``--batches`` batches of 2,000
individual ``Executor.submit(abs, i)`` followed by every ``result()``, and callgrind counts the
instructions of that part alone (the counters are zeroed when the farmer calls ``os.getpgid`` just
before it, and dumped when it calls ``os.getsid`` just after: ``--zero-before`` / ``--dump-before``);
divided by the tasks, that is the cost of one task on the farmer, all its threads (the caller's,
where ``submit`` pickles, and the farm's). Cases: ``plain`` (a farm of 2 workers) and ``journal``
(the same with a fresh journal: every task is keyed, looked up, recorded and committed). Printed:
instructions per task, and the journal's cost in percent of the plain farm's.

Under valgrind the farmer runs some 50 times slower than the workers, so it always finds their
results waiting: this is the farmer-bound regime, the one in which a trivial task's throughput is
the farmer's cost per task. Two settings keep that regime like the farmer's at full speed: each
worker's pipeline is 32 tasks deep (what the adaptive depth reaches at full speed; under valgrind it
follows the farmer's slowness, and the number of messages per task then varied 1.7 times from one
run to the next), and the journal's ``flush_interval`` is 2 s (a commit then holds about as many
records as a 0.1 s one at full speed). Needs ``valgrind`` (``apt-get install valgrind``). To
compare with another checkout, run the same command with that checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BATCH = 2000
PIPELINE = 32  # tasks each worker holds (see the module docstring)
FLUSH_INTERVAL = 2.0  # the journal's, under valgrind (see the module docstring)


def _workload(case: str, batches: int) -> None:
    """(In the process under valgrind) start a farm and run ``batches`` batches of trivial tasks."""
    from philipjose import farm

    with tempfile.TemporaryDirectory() as folder:
        journal = (
            farm.Journal(Path(folder) / "j.sqlite", script=None, flush_interval=FLUSH_INTERVAL)
            if case == "journal"
            else None
        )
        with farm.Executor(2, journal=journal, max_in_flight=PIPELINE) as ex:
            assert [f.result() for f in [ex.submit(abs, -i) for i in range(200)]] == list(range(200))
            os.getpgid(0)  # callgrind zeroes its counters here (--zero-before=getpgid)
            first = 1000  # new tasks every batch: with a journal, each one runs and is recorded
            for _ in range(batches):
                futures = [ex.submit(abs, i) for i in range(first, first + BATCH)]
                assert [f.result() for f in futures] == list(range(first, first + BATCH))
                first += BATCH
            os.getsid(0)  # and dumps them here (--dump-before=getsid)


def _instructions(case: str, batches: int) -> int:
    """The instructions the farmer executed for ``batches`` batches (see the module docstring)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--trace-children=no",
                "--zero-before=getpgid",
                "--dump-before=getsid",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                case,
                str(batches),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        dump = Path(f"{out}.1")
        found = re.search(r"^summary: (\d+)$", dump.read_text(), re.MULTILINE) if dump.exists() else None
    if done.returncode != 0 or found is None:
        raise SystemExit(f"the {case} farm under valgrind failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=4, help="batches of 2,000 tasks counted (default 4)")
    parser.add_argument("--only", default="plain,journal", help="cases: plain, journal")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "BATCHES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _workload(args.child[0], int(args.child[1]))
        return
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    if args.batches < 1:
        parser.error("--batches must be at least 1")
    cases = [c.strip() for c in args.only.split(",") if c.strip()]
    for case in cases:
        if case not in ("plain", "journal"):
            parser.error(f"no such case {case!r} (plain, journal)")
    import philipjose

    print(f"philipjose from {Path(philipjose.__file__).parent}, load average {os.getloadavg()[0]:.2f}")
    per_task: dict[str, float] = {}
    for case in cases:
        count = _instructions(case, args.batches)
        per_task[case] = count / (BATCH * args.batches)
        print(f"{case:<8} {count:>15,} instructions: {per_task[case]:,.0f} per task", flush=True)
    if "plain" in per_task and "journal" in per_task:
        cost = 100 * (per_task["journal"] / per_task["plain"] - 1)
        print(f"the journal's cost: {cost:+.1f} % of the farmer's instructions per trivial task")


if __name__ == "__main__":
    main()
