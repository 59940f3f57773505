"""The farm's journal: every completed task's outcome recorded in SQLite, so that a farm started again
on the same journal resolves those tasks at once instead of running them (issue 18).

Theory of operation
-------------------
A journal is one SQLite file (stdlib :mod:`sqlite3`, WAL mode, ``synchronous=NORMAL``: a commit
survives the death of the process, SIGKILL included). Two tables: ``meta`` (the journal's format,
the philipjose version and the fingerprint of the script that wrote it) and ``batches``, one row per
batch of records written together: its ``entries`` (for each record in order its key, the function's
name, whether it succeeded and the length of its outcome; ``marshal``-ed lists) and its ``outcomes``
(the outcomes exactly as the workers pickled them, one after the other). A record is found by its
batch and its place in it, and its outcome read alone from the batch's blob (SQLite's incremental
blob I/O). One row per batch instead of one per task is what makes the journal cheap: committing a
record costs the farmer about 0.7 us instead of 3.8 us for a row of its own (two B-tree inserts).

Keys: every task the farm runs has one. By default it is the task's payload itself when that is at
most 64 bytes (a function by reference and small arguments: ``abs(-3)`` is 39 bytes), else a digest
(BLAKE2b, 128 bits) of it; the payload is exactly what is shipped to a worker: the function (by
reference when it is importable, else its pickled code, globals and closure) and its arguments.
Pickling the same script's function with the same arguments gives the same bytes in every run, so
the key is stable across runs; what breaks it is an argument that pickles differently each time (a
``set`` of strings under hash randomization, an object carrying a timestamp or a random id, a class
defined in the script and shipped by value). ``options(key=...)`` gives a task an explicit key
instead (``str`` or ``bytes``); the three kinds of key start with different bytes, so they never
collide.

Recording: the farm calls :meth:`Journal.record_all` on the event loop with the outcomes of a
worker's report, before their futures resolve; it only appends them to a list. The farm's flusher
writes what was recorded in one transaction (batched commits), ``flush_interval`` seconds (default
0.1) after the first unwritten record, and once more when the farm closes, in a thread: one insert
of two blobs per MiB of outcomes, during which SQLite lets go of the GIL. So a farmer killed
outright loses at most the last ``flush_interval`` seconds of results, which run again. Records
are written as they come, a key's second record too (two tasks of the same key in one run); which
one is in force is decided when the journal is read: a key's first success, else its last failure.

Replaying: :meth:`Journal.open` checks the ``meta`` table (a journal of another script or another
philipjose version is refused with :class:`JournalMismatch`, never silently reused) and reads the
entries of every batch into memory (key -> succeeded, and where its record in force lies; outcomes
stay on disk); :meth:`Journal.lookup` then costs one blob read (the entries of the batch last read
are kept at hand: a run resumed submits its tasks in about the order they were recorded). A task
whose key was not recorded costs no call: the farm tests ``key in journal.keys()``. What a farm
replays is what the journal held when it opened; the records of its own run are for the runs after
it. That keeps a run's own keys out of memory: a dict of every key recorded so far, probed for
each task, cost a farm of trivial tasks 2-3 us a task at 300,000 keys (cache misses: the keys and
the dict outgrow the CPU's caches), four times the journal's own work. What stays in memory is held
so that the garbage collector need not visit it: dicts of bytes to bools or ints (a set of 300,000
keys added 12 ms to every full collection, which a farm of trivial tasks makes every few thousand
tasks). A recorded failure is replayed only with ``rerun_failed=False``; by default it runs again,
and its new outcome supersedes it.

Guarantees: execution is at least once (a task may run again after its worker died, or after the
farmer died before its result was written); results are exactly once per key: the first recorded
success of a key is what every later run gets.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import marshal
import operator
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator, KeysView
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import sqlite3

from philipjose._version import __version__
from philipjose.farm.errors import FarmError

__all__ = [
    "DEFAULT_FLUSH_INTERVAL",
    "Journal",
    "JournalError",
    "JournalMismatch",
    "JournalSummary",
    "Record",
    "Recorded",
    "clear_journal",
    "compact_journal",
    "explicit_key",
    "payload_key",
    "script_fingerprint",
    "summarize_journal",
    "task_key",
]

FORMAT: Final = "philipjose-farm-journal 2"
DEFAULT_FLUSH_INTERVAL: Final = 0.1
"""Seconds between the first unwritten result and the commit that writes it (and those after it)."""

_NO_SCRIPT: Final = "none"
_AUTO: Final = object()
_INSERT: Final = "INSERT INTO batches (recorded, entries, outcomes) VALUES (?, ?, ?)"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    recorded REAL NOT NULL,
    entries BLOB NOT NULL,
    outcomes BLOB NOT NULL
);
"""
_BATCH_BYTES: Final = 2**20  # outcomes per row of batches (a larger outcome has a row of its own)
_OWN_KEY: Final = 64  # a payload of at most this many bytes is its own key
_SCRIPT_MODULE = re.compile(r"pj_farm_script_[0-9a-f]{12}\.")

_OUTCOME = operator.itemgetter(3)  # of a Record
_PLACE_BITS = 32  # where a record lies: its batch << _PLACE_BITS | its place in the batch
# what a batch's entries hold: keys, function names, whether each succeeded, outcome lengths
_Entries = tuple[list[bytes], list[str], list[bool], list[int]]
Record = tuple[bytes, str, bool, bytes]
"""A record as :meth:`Journal.record_all` takes it: (key, function, succeeded, outcome)."""


class JournalError(FarmError):
    """A journal cannot be used: not a journal, unreadable, or (:class:`JournalMismatch`) another's."""


class JournalMismatch(JournalError):
    """The journal was written by another script or another philipjose version."""


def payload_key(payload: bytes) -> bytes:
    """A 128-bit BLAKE2b digest of a task's payload (what is shipped), as a key."""
    return b"#" + hashlib.blake2b(payload, digest_size=16).digest()


def task_key(payload: bytes) -> bytes:
    """The default key of a task: its payload itself when it is at most 64 bytes (cheaper than any
    digest, and exact), else :func:`payload_key`; never equal to an :func:`explicit_key`."""
    return b"~" + payload if len(payload) <= _OWN_KEY else payload_key(payload)


def explicit_key(key: str | bytes) -> bytes:
    """The key of a task given ``options(key=...)``: never equal to a :func:`task_key`."""
    return b"=" + (key.encode("utf-8") if isinstance(key, str) else bytes(key))


def script_fingerprint(path: str | os.PathLike[str] | None) -> str:
    """``"<absolute path> sha256:<hex>"`` of the script at ``path``, ``"none"`` without one."""
    if path is None:
        return _NO_SCRIPT
    file = Path(path).resolve()
    try:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError:
        return _NO_SCRIPT
    return f"{file} sha256:{digest}"


def _main_script() -> str | None:
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    return file if isinstance(file, str) and os.path.isfile(file) else None


def _shown_script(fingerprint: str) -> str:
    if fingerprint == _NO_SCRIPT:
        return "no script"
    path, _, digest = fingerprint.rpartition(" ")
    return f"{path} ({digest[:19]})"


def function_name(description: str) -> str:
    """How a task's function is shown: the private module name of a ``farm run`` script dropped."""
    return _SCRIPT_MODULE.sub("", description)


@dataclass(frozen=True, slots=True)
class Recorded:
    """A recorded outcome: whether the task succeeded, and its outcome as the worker pickled it."""

    ok: bool
    outcome: bytes


def _connect(path: Path) -> sqlite3.Connection:
    import sqlite3  # here: the workers import the farm, never a journal
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: not a farm journal, or not readable ({exc})") from exc
    return db


def _read_meta(db: sqlite3.Connection, path: Path) -> dict[str, str] | None:
    """The journal's meta table; None for an empty database (a new journal)."""
    import sqlite3  # here: the workers import the farm, never a journal
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        if "meta" not in tables:
            raise JournalError(f"{path}: an SQLite database, but not a farm journal")
        meta = dict(db.execute("SELECT name, value FROM meta"))
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{path}: not a farm journal ({exc})") from exc
    if meta and (meta.get("format") != FORMAT or "batches" not in tables):
        raise JournalError(
            f"{path}: not a farm journal of this format ({meta.get('format')!r}, this philipjose "
            f"writes {FORMAT!r}); delete it or use another journal"
        )
    return meta


def _entries(data: bytes, path: Path) -> _Entries:
    """A batch's entries, checked: four lists of the same length, of the right types."""
    try:
        keys, functions, oks, lengths = marshal.loads(data)
        if not len(keys) == len(functions) == len(oks) == len(lengths):
            raise ValueError("lists of different lengths")
    except (ValueError, TypeError, EOFError) as exc:
        raise JournalError(f"{path}: a damaged batch of records ({exc})") from exc
    return keys, functions, oks, lengths


def _pack(records: list[Record]) -> tuple[bytes, bytes]:
    """A row of ``batches``: the entries of the records (in order; functions as
    :func:`function_name` shows them) and their outcomes, one after the other."""
    keys, functions, oks, outcomes = zip(*records)  # noqa: B905 (four fields each)
    names = {function: function_name(function) for function in set(functions)}
    entries = (list(keys), list(map(names.__getitem__, functions)), list(oks), list(map(len, outcomes)))
    return marshal.dumps(entries), b"".join(outcomes)


def _split(batch: list[Record], size: int) -> Iterator[list[Record]]:
    """The records of ``batch`` (in order) in groups of at most ``_BATCH_BYTES`` of outcomes (a larger
    outcome alone); ``size`` is their total."""
    if size <= _BATCH_BYTES:
        yield batch
        return
    group: list[Record] = []
    held = 0
    for record in batch:
        length = len(record[3])
        if group and held + length > _BATCH_BYTES:
            yield group
            group, held = [], 0
        group.append(record)
        held += length
    if group:
        yield group


def _scan(db: sqlite3.Connection, path: Path) -> dict[bytes, tuple[int, int, bool, str]]:
    """Every key's record in force, as the journal reads them (a key's first success, else its last
    failure): key -> (batch, place in the batch, succeeded, function)."""
    live: dict[bytes, tuple[int, int, bool, str]] = {}
    for batch, data in db.execute("SELECT id, entries FROM batches ORDER BY id"):
        keys, functions, oks, _ = _entries(data, path)
        for place, (key, function, ok) in enumerate(zip(keys, functions, oks, strict=True)):
            held = live.get(key)
            if held is None or not held[2]:
                live[key] = (batch, place, bool(ok), function)
    return live


class Journal:
    """The durable record of a farm's results (see the module docstring).

    ``Journal(path)``: ``script`` is the script whose results it holds (default: the ``__main__``
    script's file, if any; ``farm run`` gives its SCRIPT): a journal written for another script (or
    the same one changed) or by another philipjose version is refused with :class:`JournalMismatch`.
    ``rerun_failed`` (default True): recorded failures run again; False replays them too (their
    ``TaskError`` at once). ``flush_interval``: seconds a result may wait before its commit.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        script: str | os.PathLike[str] | object | None = _AUTO,
        rerun_failed: bool = True,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        if not flush_interval >= 0:
            raise ValueError(f"flush_interval must be at least 0, not {flush_interval}")
        self.path = Path(path)
        chosen = _main_script() if script is _AUTO else script
        self.fingerprint = script_fingerprint(chosen)  # type: ignore[arg-type]
        self.rerun_failed = rerun_failed
        self.flush_interval = flush_interval
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        # key -> succeeded, for every key recorded when the journal was opened. A dict of bytes ->
        # bool, and never a set: the garbage collector leaves such a dict alone, where it would
        # visit every key of a set in each full collection (12 ms at 300,000 keys)
        self._index: dict[bytes, bool] = {}
        self._where: dict[bytes, int] = {}  # key -> where its record in force lies (_PLACE_BITS)
        self._located: tuple[int, list[int]] = (0, [])  # a batch, and where its outcomes start
        self._unwritten: list[Record] = []
        self._unwritten_bytes = 0
        self._lock = threading.Lock()  # the unwritten records
        self._write_lock = threading.Lock()  # the writer connection
        self.recorded = 0  # results recorded by this run

    def __repr__(self) -> str:
        return f"<Journal {self.path} {len(self._index)} keys>"

    def open(self) -> None:
        """Open (or create) the journal; :class:`JournalMismatch` if another script's or version's."""
        import sqlite3  # here: the workers import the farm, never a journal
        if self.path.is_dir():
            raise JournalError(f"{self.path}: is a folder, not a journal")
        if not self.path.parent.is_dir():
            raise JournalError(f"{self.path}: no such folder {self.path.parent}")
        writer = _connect(self.path)
        try:
            meta = _read_meta(writer, self.path)
            if meta is not None and "philipjose" in meta:
                self._check(meta)
            else:
                writer.executescript(_SCHEMA)
                writer.execute("BEGIN")
                writer.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("format", FORMAT), ("philipjose", __version__), ("script", self.fingerprint)],
                )
                writer.execute("COMMIT")
            reader = _connect(self.path)
            live = _scan(reader, self.path)
            self._index.clear()  # the same dict: keys() views stay live
            self._index.update((key, ok) for key, (_, _, ok, _) in live.items())
            self._where = {key: batch << _PLACE_BITS | place for key, (batch, place, _, _) in live.items()}
        except sqlite3.Error as exc:
            writer.close()
            raise JournalError(f"{self.path}: {exc}") from exc
        except BaseException:
            writer.close()
            raise
        self._writer, self._reader = writer, reader

    def _check(self, meta: dict[str, str]) -> None:
        clear = f"clear it with `philipjose farm journal {self.path} --clear`, or use another journal"
        version = meta.get("philipjose", "?")
        if version != __version__:
            raise JournalMismatch(
                f"journal {self.path} was written by philipjose {version}, this is {__version__}: "
                f"its results are not reused ({clear})"
            )
        script = meta.get("script", _NO_SCRIPT)
        if script != self.fingerprint:
            raise JournalMismatch(
                f"journal {self.path} was written for {_shown_script(script)}, not for "
                f"{_shown_script(self.fingerprint)}: the script changed, so its results are not reused "
                f"({clear})"
            )

    def __len__(self) -> int:
        """How many keys the journal held when it was opened."""
        return len(self._index)

    def keys(self) -> KeysView[bytes]:
        """Every key recorded when the journal was opened (failures too), a live view: ``key in
        journal.keys()`` is how the farm skips :meth:`lookup` (a call) for a task never recorded."""
        return self._index.keys()

    def lookup(self, key: bytes) -> Recorded | None:
        """The outcome of ``key`` the journal held when it was opened, to replay; None if it held
        none, or a failure to rerun. (What this run records is for the runs after it.)"""
        ok = self._index.get(key)
        if ok is None or (not ok and self.rerun_failed):
            return None
        assert self._reader is not None, "the journal is not open"
        batch, place = divmod(self._where[key], 1 << _PLACE_BITS)
        start, end = self._locate(batch)[place : place + 2]
        with self._reader.blobopen("batches", "outcomes", batch, readonly=True) as blob:
            blob.seek(start)
            return Recorded(ok, blob.read(end - start))

    def _locate(self, batch: int) -> list[int]:
        """Where the records of ``batch`` lie in its outcomes: record i from offset i to i + 1."""
        if self._located[0] != batch:
            assert self._reader is not None
            (data,) = self._reader.execute("SELECT entries FROM batches WHERE id = ?", (batch,)).fetchone()
            _, _, _, lengths = _entries(data, self.path)
            self._located = (batch, list(itertools.accumulate(lengths, initial=0)))
        return self._located[1]

    def record(self, key: bytes, function: str, ok: bool, outcome: bytes) -> None:
        """Record ``key``'s outcome (written by the next :meth:`flush`). Every record is written;
        read back, a key's first success is in force, else its last failure."""
        self.record_all(((key, function, ok, outcome),))

    def record_all(self, records: Iterable[Record]) -> None:
        """:meth:`record` each of ``records`` in turn (the farm records a worker's report at once:
        one call and one lock for its tasks, the tuples kept as they are until written)."""
        records = records if isinstance(records, (list, tuple)) else list(records)
        size = sum(map(len, map(_OUTCOME, records)))
        with self._lock:
            self._unwritten += records
            self._unwritten_bytes += size
        self.recorded += len(records)

    def unwritten(self) -> int:
        """How many recorded outcomes wait for :meth:`flush`."""
        return len(self._unwritten)

    def unwritten_bytes(self) -> int:
        """The size of the outcomes that wait for :meth:`flush`."""
        return self._unwritten_bytes

    def flush(self) -> int:
        """Write the unwritten outcomes in one transaction (call it off the event loop); how many."""
        import sqlite3  # here: the workers import the farm, never a journal
        with self._write_lock:
            with self._lock:
                batch, size = self._unwritten, self._unwritten_bytes
                self._unwritten, self._unwritten_bytes = [], 0
            if not batch or self._writer is None:
                return 0
            now = time.time()
            try:
                self._writer.execute("BEGIN")
                for group in _split(batch, size):
                    entries, outcomes = _pack(group)
                    self._writer.execute(_INSERT, (now, entries, outcomes))
                self._writer.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._writer.execute("ROLLBACK")
                raise JournalError(f"journal {self.path}: could not record results: {exc}") from exc
            return len(batch)

    def close(self) -> None:
        """Write what is unwritten and close."""
        try:
            self.flush()
        finally:
            for db in (self._reader, self._writer):
                if db is not None:
                    db.close()
            self._reader = self._writer = None


# -- philipjose farm journal ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalSummary:
    """What a journal holds: its meta, per function ``(done, failed)``, and its size in bytes."""

    path: Path
    version: str
    script: str
    functions: dict[str, tuple[int, int]]
    size: int

    @property
    def done(self) -> int:
        return sum(d for d, _ in self.functions.values())

    @property
    def failed(self) -> int:
        return sum(f for _, f in self.functions.values())

    def lines(self) -> list[str]:
        """The summary as ``philipjose farm journal`` prints it."""
        out = [
            f"{self.path}: {self.done} tasks done, {self.failed} failed; {_size(self.size)}",
            f"written by philipjose {self.version} for {_shown_script(self.script)}"
            if self.version != "?"
            else "cleared: the next farm to open it may be any script's",
        ]
        if self.functions:
            width = max(len(name) for name in self.functions)
            for name, (done, failed) in sorted(self.functions.items()):
                out.append(f"  {name:<{width}}  {done} done, {failed} failed")
        return out


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 2**20:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 2**20:.1f} MiB"


def _disk_size(path: Path) -> int:
    total = 0
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):
            total += name.stat().st_size
    return total


@contextlib.contextmanager
def _existing(path: Path) -> Iterator[tuple[sqlite3.Connection, dict[str, str]]]:
    import sqlite3  # here: the workers import the farm, never a journal

    if not path.exists():
        raise JournalError(f"{path}: no such journal")
    if path.is_dir():
        raise JournalError(f"{path}: is a folder, not a journal")
    db = _connect(path)
    try:
        meta = _read_meta(db, path)
        if meta is None:
            raise JournalError(f"{path}: not a farm journal (an empty database)")
        yield db, meta
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: {exc}") from exc
    finally:
        db.close()


def summarize_journal(path: str | os.PathLike[str]) -> JournalSummary:
    """What the journal at ``path`` holds; :class:`JournalError` if it is not one."""
    file = Path(path)
    with _existing(file) as (db, meta):
        functions: dict[str, tuple[int, int]] = {}
        for _, _, ok, name in _scan(db, file).values():
            done, failed = functions.get(name, (0, 0))
            functions[name] = (done + 1, failed) if ok else (done, failed + 1)
    return JournalSummary(
        file, meta.get("philipjose", "?"), meta.get("script", _NO_SCRIPT), functions, _disk_size(file)
    )


def compact_journal(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Drop the records no longer in force (failures superseded by a later record of their key, and
    a key's successes after its first), checkpoint the WAL and VACUUM the journal at ``path``; its
    size before and after."""
    file = Path(path)
    before = _disk_size(file)
    with _existing(file) as (db, _):
        live = _scan(db, file)
        db.execute("BEGIN")
        for batch, data in list(db.execute("SELECT id, entries FROM batches")):
            keys, functions, oks, lengths = _entries(data, file)
            kept = [i for i, key in enumerate(keys) if live[key][:2] == (batch, i)]
            if len(kept) == len(keys):
                continue
            if not kept:
                db.execute("DELETE FROM batches WHERE id = ?", (batch,))
                continue
            (outcomes,) = db.execute("SELECT outcomes FROM batches WHERE id = ?", (batch,)).fetchone()
            offsets = list(itertools.accumulate(lengths, initial=0))
            records = [(keys[i], functions[i], oks[i], outcomes[offsets[i] : offsets[i + 1]]) for i in kept]
            entries, joined = _pack(records)
            db.execute("UPDATE batches SET entries = ?, outcomes = ? WHERE id = ?", (entries, joined, batch))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return before, _disk_size(file)


def clear_journal(path: str | os.PathLike[str]) -> int:
    """Forget every result and the script the journal at ``path`` was for; how many results."""
    file = Path(path)
    with _existing(file) as (db, _):
        count = len(_scan(db, file))
        db.execute("BEGIN")
        db.execute("DELETE FROM batches")
        db.execute("DELETE FROM meta WHERE name != 'format'")  # any script may use it now
        db.execute("COMMIT")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return count
