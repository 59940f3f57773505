"""The farm's journal (issue 18): the SQLite record itself, a Farm resuming from it, and
``philipjose farm run --journal`` killed with SIGKILL and run again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from philipjose import __version__, farm
from philipjose.farm import journal as jr
from philipjose.farm.shipping import Returned, dumps_outcome, dumps_task, outcome_of
from tests.farm._tasks import logged_square

# -- the journal alone ---------------------------------------------------------------------------------


def _ok(value: object) -> bytes:
    return dumps_outcome(Returned(value))


def _failed(message: str) -> bytes:
    return dumps_outcome(outcome_of(ValueError(message)))


def _sql(path: Path, *statements: str) -> list[tuple[object, ...]]:
    """Run ``statements`` on the database at ``path`` (committed); the rows of the last one."""
    db = sqlite3.connect(path)
    try:
        rows: list[tuple[object, ...]] = []
        for statement in statements:
            rows = db.execute(statement).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def test_records_survive_reopening_and_failures_rerun_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    book = jr.Journal(path, script=None)
    book.open()
    good, bad = jr.payload_key(b"a"), jr.payload_key(b"b")
    assert book.lookup(good) is None
    book.record(good, "m.f", True, _ok(4))
    book.record(bad, "m.f", False, _failed("no"))
    assert book.lookup(good) is None  # what a run records is for the runs after it
    assert book.unwritten() == 2 and book.flush() == 2 and book.unwritten() == 0
    assert book.lookup(good) is None and len(book) == 0  # written too
    book.record(good, "m.f", True, _ok(5))  # a key keeps its first success
    book.close()
    again = jr.Journal(path, script=None)
    again.open()
    assert len(again) == 2
    assert again.lookup(good) == jr.Recorded(True, _ok(4))
    assert again.lookup(bad) is None  # rerun by default
    again.close()
    replaying = jr.Journal(path, script=None, rerun_failed=False)
    replaying.open()
    assert replaying.lookup(bad) == jr.Recorded(False, _failed("no"))
    replaying.close()
    assert _sql(path, "PRAGMA journal_mode") == [("wal",)]


def test_explicit_keys_never_collide_with_digests() -> None:
    digest = jr.payload_key(b"x")
    assert len(digest) == 17 and digest != jr.explicit_key(digest[1:])
    assert jr.explicit_key("k") == jr.explicit_key(b"k") != jr.payload_key(b"k")


def test_a_short_payload_is_its_own_key_and_a_long_one_a_digest() -> None:
    short, long = dumps_task(abs, (-3,)), dumps_task(abs, (b"x" * 100,))
    assert jr.task_key(short) == b"~" + short and len(short) <= 64
    assert jr.task_key(long) == jr.payload_key(long)
    assert jr.task_key(b"k") != jr.explicit_key(b"k")[1:] and jr.task_key(b"=k") != jr.explicit_key(b"k")


def test_records_in_many_batches_are_found_in_any_order(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    book = jr.Journal(path, script=None)
    book.open()
    keys = [jr.explicit_key(str(i)) for i in range(40)]
    for i, key in enumerate(keys[:30]):  # 30 outcomes of 100 KB: three rows of batches in one flush
        book.record(key, "m.f", True, _ok(bytes([i]) * 100_000))
    assert book.flush() == 30
    for i, key in enumerate(keys[30:], 30):  # and a second flush of small ones
        book.record(key, "m.g", i % 2 == 0, _ok(i) if i % 2 == 0 else _failed(str(i)))
    book.close()
    assert _sql(path, "SELECT COUNT(*) FROM batches") == [(4,)]
    again = jr.Journal(path, script=None, rerun_failed=False)
    again.open()
    for i in [39, 0, 29, 31, 5, 30, 12, 38]:
        expected = _ok(bytes([i]) * 100_000) if i < 30 else _ok(i) if i % 2 == 0 else _failed(str(i))
        assert again.lookup(keys[i]) == jr.Recorded(i < 30 or i % 2 == 0, expected)
    again.close()


def test_a_report_recorded_at_once_keeps_first_successes_and_replaces_failures(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    book = jr.Journal(path, script=None, rerun_failed=False)
    book.open()
    known = book.keys()  # a live view, the farm's test for "never recorded"
    a, b, c = (jr.explicit_key(k) for k in "abc")
    records = [
        (a, "pj_farm_script_0123456789ab.f", False, _failed("first")),
        (a, "pj_farm_script_0123456789ab.f", True, _ok(1)),  # replaces the failure
        (b, "m.g", True, _ok(2)),
        (b, "m.g", True, _ok(3)),  # a second success of the same key is not in force
    ]
    book.record_all(records)
    book.record_all([(c, "m.g", False, _failed("c")), (a, "m.f", True, _ok(4))])
    records += [(c, "m.g", False, _failed("c")), (a, "m.f", True, _ok(4))]
    assert a not in known and book.recorded == 6 and book.unwritten() == 6  # every record is written
    assert book.unwritten_bytes() == sum(len(record[3]) for record in records)
    assert book.lookup(a) is None and book.flush() == 6
    book.close()
    again = jr.Journal(path, script=None, rerun_failed=False)
    view = again.keys()
    again.open()
    assert set(view) == {a, b, c}  # the view taken before open() sees what it read
    assert again.lookup(a) == jr.Recorded(True, _ok(1)) and again.lookup(b) == jr.Recorded(True, _ok(2))
    assert again.lookup(c) == jr.Recorded(False, _failed("c"))
    again.close()
    # function names are shown as `farm run` scripts' functions are, from what was given
    assert jr.summarize_journal(path).functions == {"f": (1, 0), "m.g": (1, 1)}


_REPORTS = st.lists(  # reports of (key number, succeeded, outcome size), as a farm's workers send them
    st.lists(st.tuples(st.integers(0, 6), st.booleans(), st.integers(0, 40)), max_size=8), max_size=8
)


@settings(max_examples=200, deadline=None)
@given(_REPORTS, st.lists(st.booleans(), min_size=8, max_size=8))
def test_record_all_keeps_first_successes_whatever_the_reports(
    tmp_path_factory: pytest.TempPathFactory, reports: list[list[tuple[int, bool, int]]], flushes: list[bool]
) -> None:
    """Whatever the reports (a key twice in one, or in several; flushed together or apart), the
    journal read back after each flush, and by the run after, holds the rule's record of each key: its
    first success, else its last failure; the run itself looks none of them up."""
    path = tmp_path_factory.mktemp("j") / "j.sqlite"
    book = jr.Journal(path, script=None, rerun_failed=False)
    book.open()
    held: dict[bytes, jr.Record] = {}  # the model: each key's record in force
    written: dict[bytes, jr.Record] = {}  # the model: the same, of what is written
    waiting: list[jr.Record] = []  # the model: what the next flush writes
    for report, flush in zip(reports, flushes, strict=False):
        records = [
            (jr.explicit_key(str(k)), "m.f", ok, bytes([k]) * size + (b"ok" if ok else b"no"))
            for k, ok, size in report
        ]
        for record in records:
            previous = held.get(record[0])
            if previous is None or not previous[2]:
                held[record[0]] = record
        book.record_all(records)
        waiting += records
        assert book.unwritten() == len(waiting)
        assert book.unwritten_bytes() == sum(len(r[3]) for r in waiting)
        assert not book.keys() and all(book.lookup(key) is None for key in held)
        if flush:
            assert book.flush() == len(waiting)
            waiting.clear()
            written = dict(held)
        reader = jr.Journal(path, script=None, rerun_failed=False)
        reader.open()  # another farm on the same file, now: sees what is written
        read = reader.keys()
        assert {key: reader.lookup(key) for key in read} == {
            key: jr.Recorded(record[2], record[3]) for key, record in written.items()
        }
        reader.close()
    book.close()
    again = jr.Journal(path, script=None, rerun_failed=False)
    again.open()
    assert len(again) == len(held)
    for key, record in held.items():  # and the journal read back holds the same
        assert again.lookup(key) == jr.Recorded(record[2], record[3])
    again.close()


def test_a_run_replays_what_the_journal_held_when_it_opened(tmp_path: Path) -> None:
    """A run looks up what earlier runs recorded, never its own records; read back, a key recorded
    several times (in one batch or in several) has its first success in force, else its last failure."""
    path = tmp_path / "j.sqlite"
    keys = [jr.explicit_key(str(i)) for i in range(4)]
    first = jr.Journal(path, script=None, rerun_failed=False)
    first.open()
    first.record_all([(keys[0], "m.f", True, _ok("first")), (keys[1], "m.f", False, _failed("one"))])
    assert first.flush() == 2 and first.lookup(keys[0]) is None
    first.close()
    second = jr.Journal(path, script=None, rerun_failed=False)
    second.open()
    assert second.lookup(keys[0]) == jr.Recorded(True, _ok("first"))
    second.record_all(
        [
            (keys[1], "m.f", True, _ok("one")),  # supersedes the failure of the first run
            (keys[2], "m.f", False, _failed("two")),
            (keys[2], "m.f", True, _ok("two")),
            (keys[2], "m.f", False, _failed("late")),  # after a success: not in force
            (keys[0], "m.f", True, _ok("again")),
            (keys[3], "m.f", False, _failed("three")),
        ]
    )
    second.record(keys[3], "m.f", False, _failed("three, again"))  # the last failure is in force
    assert second.flush() == 7
    assert second.lookup(keys[1]) == jr.Recorded(False, _failed("one"))  # as it was at its open
    assert second.lookup(keys[2]) is None and len(second) == 2
    second.close()
    in_force = [_ok("first"), _ok("one"), _ok("two"), _failed("three, again")]
    for compacted in (False, True):  # the same before and after a compaction
        third = jr.Journal(path, script=None, rerun_failed=False)
        third.open()
        assert [third.lookup(key) for key in keys] == [jr.Recorded(i < 3, o) for i, o in enumerate(in_force)]
        third.close()
        assert jr.summarize_journal(path).functions == {"m.f": (3, 1)}
        if not compacted:
            jr.compact_journal(path)  # what is not in force is dropped
    kept = [jr._entries(data, path)[0] for (data,) in _sql(path, "SELECT entries FROM batches ORDER BY id")]
    assert kept == [[keys[0]], [keys[1], keys[2], keys[3]]]


def test_a_failure_superseded_by_a_success_counts_once_and_compacts_away(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    key = jr.explicit_key("k")
    first = jr.Journal(path, script=None)
    first.open()
    first.record(key, "m.f", False, _failed("no"))
    first.record(jr.explicit_key("other"), "m.f", True, _ok(1))
    first.close()
    second = jr.Journal(path, script=None)
    second.open()
    assert second.lookup(key) is None  # the failure runs again...
    second.record(key, "m.f", True, _ok(2))  # ...and succeeds: that is what counts from now on
    second.close()
    assert jr.summarize_journal(path).functions == {"m.f": (2, 0)}
    jr.compact_journal(path)
    assert _sql(path, "SELECT COUNT(*) FROM batches") == [(2,)]  # the first batch, rewritten
    third = jr.Journal(path, script=None, rerun_failed=False)
    third.open()
    assert third.lookup(key) == jr.Recorded(True, _ok(2)) and len(third) == 2
    assert third.lookup(jr.explicit_key("other")) == jr.Recorded(True, _ok(1))
    third.close()


def test_a_damaged_batch_or_an_older_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    book = jr.Journal(path, script=None)
    book.open()
    book.record(jr.explicit_key("k"), "m.f", True, _ok(1))
    book.close()
    _sql(path, "UPDATE batches SET entries = x'00ff'")
    with pytest.raises(jr.JournalError, match="a damaged batch of records"):
        jr.Journal(path, script=None).open()
    old = tmp_path / "old.sqlite"
    _sql(
        old,
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO meta VALUES ('format', 'philipjose-farm-journal 1')",
    )
    with pytest.raises(jr.JournalError, match=r"not a farm journal of this format.*journal 1"):
        jr.Journal(old, script=None).open()


def test_another_script_or_version_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("def main(farm): pass\n")
    path = tmp_path / "j.sqlite"
    book = jr.Journal(path, script=script)
    book.open()
    book.close()
    same = jr.Journal(path, script=script)
    same.open()
    same.close()
    script.write_text("def main(farm): return 1\n")
    with pytest.raises(jr.JournalMismatch, match=r"the script changed.*--clear"):
        jr.Journal(path, script=script).open()
    with pytest.raises(jr.JournalMismatch):
        jr.Journal(path, script=None).open()
    _sql(path, "UPDATE meta SET value = '0.0.1' WHERE name = 'philipjose'")
    with pytest.raises(jr.JournalMismatch, match=rf"written by philipjose 0.0.1, this is {__version__}"):
        jr.Journal(path, script=script).open()
    assert issubclass(jr.JournalMismatch, farm.FarmError)


def test_what_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database at all" * 10)
    with pytest.raises(jr.JournalError, match="not a farm journal"):
        jr.Journal(text, script=None).open()
    other = tmp_path / "other.sqlite"
    _sql(other, "CREATE TABLE t (x)")
    with pytest.raises(jr.JournalError, match="not a farm journal"):
        jr.Journal(other, script=None).open()
    with pytest.raises(jr.JournalError, match="is a folder"):
        jr.Journal(tmp_path, script=None).open()
    with pytest.raises(jr.JournalError, match="no such folder"):
        jr.Journal(tmp_path / "nowhere" / "j.sqlite", script=None).open()


def test_summary_compact_and_clear(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    book = jr.Journal(path, script=None)
    book.open()
    for i in range(30):
        book.record(jr.payload_key(bytes([i])), "map pj_farm_script_0123456789ab.work", i % 10 != 0, _ok(i))
    book.record(jr.explicit_key("x"), "m.other", True, _ok("x" * 100_000))
    book.close()
    summary = jr.summarize_journal(path)
    assert summary.functions == {"map work": (27, 3), "m.other": (1, 0)}
    assert (summary.done, summary.failed) == (28, 3) and summary.size > 100_000
    lines = summary.lines()
    assert lines[0].startswith(f"{path}: 28 tasks done, 3 failed; ")
    assert lines[1] == f"written by philipjose {__version__} for no script"
    before, after = jr.compact_journal(path)
    assert after <= before
    assert jr.clear_journal(path) == 31
    assert jr.summarize_journal(path).functions == {}
    script = tmp_path / "job.py"
    script.write_text("def main(farm): pass\n")
    reused = jr.Journal(path, script=script)  # cleared: any script may take it
    reused.open()
    reused.close()
    with pytest.raises(jr.JournalError, match="no such journal"):
        jr.summarize_journal(tmp_path / "missing.sqlite")


def test_the_default_key_is_stable_across_processes(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("K = {'a': 1}\ndef work(x, y=2):\n    return x * K['a'] + y\ndef main(farm): pass\n")
    probe = (
        "import sys\n"
        "from philipjose.farm.script import load_script, script_imports\n"
        "from philipjose.farm.shipping import dumps_task\n"
        "from philipjose.farm.journal import payload_key\n"
        "with script_imports(sys.argv[1]):\n"
        "    m = load_script(sys.argv[1])\n"
        "    print(payload_key(dumps_task(m.work, (3,), {'y': [1, 2]})).hex())\n"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", probe, str(script)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout
        for seed in (1, 2)
    }
    assert len(keys) == 1
    assert jr.payload_key(dumps_task(abs, (1,))) != jr.payload_key(dumps_task(abs, (2,)))


# -- a farm with a journal -------------------------------------------------------------------------


async def test_a_farm_on_an_existing_journal_resolves_recorded_tasks_without_running_them(
    tmp_path: Path,
) -> None:
    path, log = tmp_path / "j.sqlite", tmp_path / "runs.log"
    async with farm.Farm(workers=2, journal=farm.Journal(path, script=None)) as f:
        assert await f.map(logged_square, [str(log)] * 10, range(10)) == [x * x for x in range(10)]
        with pytest.raises(farm.TaskError):
            await f.submit(int, "not a number")
        assert await f.options(key="answer").submit(logged_square, str(log), 42) == 1764
    assert sorted(map(int, log.read_text().split())) == [*range(10), 42]
    log.unlink()
    async with farm.Farm(workers=2, journal=farm.Journal(path, script=None)) as f:
        assert await f.map(logged_square, [str(log)] * 12, range(12)) == [x * x for x in range(12)]
        # the explicit key is what counts, not the arguments
        assert await f.options(key="answer").submit(logged_square, str(log), 0) == 1764
        with pytest.raises(farm.TaskError):  # the failure runs again (and fails again)
            await f.submit(int, "not a number")
        c = f.counters
        assert c.replayed == 11 and c.submitted == 14 and c.completed == 13 and c.failed == 1
    assert sorted(map(int, log.read_text().split())) == [10, 11]  # only the new tasks ran
    async with farm.Farm(workers=1, journal=farm.Journal(path, script=None, rerun_failed=False)) as f:
        with pytest.raises(farm.TaskError, match="invalid literal"):
            await f.submit(int, "not a number")
        assert f.counters.replayed == 1


def test_the_executor_takes_a_journal(tmp_path: Path) -> None:
    path, log = tmp_path / "j.sqlite", tmp_path / "runs.log"
    for _ in range(2):
        with farm.Executor(2, journal=farm.Journal(path, script=None), speculation=True) as ex:
            assert ex.farm.speculation == farm.Speculation()
            assert list(ex.map(logged_square, [str(log)] * 5, range(5))) == [x * x for x in range(5)]
            assert ex.submit(logged_square, str(log), 7).result() == 49
    assert sorted(map(int, log.read_text().split())) == [0, 1, 2, 3, 4, 7]


# -- farm run --journal, killed and run again ------------------------------------------------------------

JOB = """\
import sys, time
LOG = sys.argv[1]
def work(x):
    time.sleep(0.075)  # the workload
    with open(LOG, "a") as out:
        out.write(f"{x}\\n")
    return x * x
async def main(farm):
    return sum(await farm.map(work, range(400)))
"""
ANSWER = str(sum(x * x for x in range(400)))


def _farm_run(script: Path, journal: Path, log: Path, *more: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "philipjose",
        "farm",
        "run",
        "--workers",
        "2",
        "--journal",
        str(journal),
        *more,
        str(script),
        str(log),
    ]


def _lines(log: Path) -> list[int]:
    return [int(x) for x in log.read_text().split()] if log.exists() else []


def test_farm_run_killed_then_run_again_reruns_almost_nothing(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(JOB)
    # a full run, for the time it takes
    start = time.monotonic()
    full = subprocess.run(
        _farm_run(script, tmp_path / "full.sqlite", tmp_path / "full.log"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    full_time = time.monotonic() - start
    assert full.returncode == 0, full.stderr
    assert full.stdout.strip() == ANSWER
    assert sorted(_lines(tmp_path / "full.log")) == list(range(400))
    # the same job, SIGKILLed once 160 tasks have run
    journal, log = tmp_path / "j.sqlite", tmp_path / "runs.log"
    farmer = subprocess.Popen(
        _farm_run(script, journal, log), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while len(_lines(log)) < 160:  # polling another process's progress: nothing to wait on
            assert farmer.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        workers = psutil.Process(farmer.pid).children(recursive=True)
        farmer.send_signal(signal.SIGKILL)
        farmer.communicate(timeout=30)
        # its workers see their lifeline end and exit; what they finish meanwhile counts as done
        _, alive = psutil.wait_procs(workers, timeout=30)
        assert alive == []
    finally:
        for p in [farmer, *workers]:
            if isinstance(p, subprocess.Popen):
                if p.poll() is None:
                    p.kill()
                    p.wait()
            elif p.is_running():
                p.kill()
    done_before = _lines(log)
    assert 160 <= len(done_before) < 400
    start = time.monotonic()
    again = subprocess.run(_farm_run(script, journal, log), capture_output=True, text=True, timeout=300)
    again_time = time.monotonic() - start
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == ANSWER
    ran_again = _lines(log)[len(done_before) :]
    assert set(done_before) | set(ran_again) == set(range(400))
    repeated = [x for x in ran_again if x in set(done_before)]
    print(f"done before {len(done_before)}, repeated {len(repeated)}, {again_time:.1f} of {full_time:.1f} s")
    assert len(repeated) <= 20, f"{len(repeated)} tasks done before ran again"
    assert again_time < 0.7 * full_time, f"resumed in {again_time:.1f} s, a full run took {full_time:.1f} s"
    # a third run has everything recorded: nothing runs
    third = subprocess.run(_farm_run(script, journal, log), capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and third.stdout.strip() == ANSWER
    assert len(_lines(log)) == len(done_before) + len(ran_again)
    # the journal command tells what it holds
    shown = subprocess.run(
        [sys.executable, "-m", "philipjose", "farm", "journal", str(journal)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].startswith(f"{journal}: 400 tasks done, 0 failed; ")
    assert "  map work  400 done, 0 failed" in shown.stdout
    assert str(script.resolve()) in shown.stdout


def test_a_changed_script_refuses_the_old_journal(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("async def main(farm):\n    return await farm.submit(abs, -3)\n")
    journal = tmp_path / "j.sqlite"
    cmd = [sys.executable, "-m", "philipjose", "farm", "run", "--workers", "1", "--speculation"]
    cmd += ["--journal", str(journal)]
    first = subprocess.run([*cmd, str(script)], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and first.stdout == "3\n", first.stderr
    script.write_text("async def main(farm):\n    return await farm.submit(abs, -4)\n")
    changed = subprocess.run([*cmd, str(script)], capture_output=True, text=True, timeout=120)
    assert changed.returncode == 2 and changed.stdout == ""
    (line,) = changed.stderr.splitlines()
    assert line.startswith(f"philipjose farm run: error: journal {journal} was written for ")
    assert "the script changed" in line and "--clear" in line
    cleared = subprocess.run(
        [sys.executable, "-m", "philipjose", "farm", "journal", str(journal), "--clear"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cleared.returncode == 0 and cleared.stdout == f"cleared {journal}: 1 results removed\n"
    after = subprocess.run([*cmd, str(script)], capture_output=True, text=True, timeout=120)
    assert after.returncode == 0 and after.stdout == "4\n", after.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.sqlite"], "missing.sqlite: no such journal"),
        (["notes.txt"], "notes.txt: not a farm journal"),
        (["j.sqlite", "--compact", "--clear"], "not allowed with argument"),
    ],
)
def test_farm_journal_mistakes_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "notes.txt").write_text("not sqlite " * 100)
    done = subprocess.run(
        [sys.executable, "-m", "philipjose", "farm", "journal", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and message in done.stderr
    if "not allowed" not in message:
        assert len(done.stderr.splitlines()) == 1
