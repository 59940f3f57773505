"""The progress line: pure formatting, and a writer that draws only on terminals."""

from __future__ import annotations

import io
import logging

from philipjose.farm.console import ConsoleHandler, console_for
from philipjose.farm.progress import ProgressCallback, ProgressWriter, format_duration, format_progress
from philipjose.farm.scheduler import Counters


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 0.4, 42, 60, 187, 3599, 3600, 7500)] == [
        "0s",
        "0s",
        "42s",
        "1m00s",
        "3m07s",
        "59m59s",
        "1h00m",
        "2h05m",
    ]


def test_format_progress_midway() -> None:
    counters = Counters(submitted=1000, resolved=512, completed=511, failed=1, workers=4, retries=2)
    assert format_progress(counters, 4.0) == (
        "[##########----------]  512/1000   51%  128.0 tasks/s  eta 4s  workers 4  retries 2  failed 1"
    )


def test_format_progress_at_start_and_end() -> None:
    assert format_progress(Counters(), 0.0) == "[--------------------]  0/0    0%  0.0 tasks/s  workers 0"
    done = Counters(submitted=10, resolved=10, completed=7, cancelled=3, workers=2)
    assert format_progress(done, 2.0, width=10) == (
        "[##########]  10/10  100%  5.0 tasks/s  workers 2  cancelled 3"
    )


def test_writer_is_quiet_when_not_a_terminal() -> None:
    stream = io.StringIO()
    writer = ProgressWriter(stream)
    assert not writer.enabled
    writer.update(Counters(submitted=1, resolved=1))
    writer.close()
    assert stream.getvalue() == ""


def test_writer_draws_in_place_and_throttles() -> None:
    stream, clock = FakeTerminal(), FakeClock()
    writer = ProgressWriter(stream, min_interval=0.5, clock=clock)
    assert writer.enabled
    clock.now = 1.0
    writer.update(Counters(submitted=4, resolved=1, workers=1))
    clock.now = 1.2
    writer.update(Counters(submitted=4, resolved=2, workers=1))  # too soon: skipped
    clock.now = 1.6
    writer.update(Counters(submitted=4, resolved=3, workers=1))
    clock.now = 1.7
    writer.update(Counters(submitted=4, resolved=4, workers=1))  # final: always drawn
    writer.close()
    frames = stream.getvalue().split("\r")
    assert frames[0] == ""
    assert [f.split("  ")[1] for f in frames[1:]] == ["1/4", "3/4", "4/4"]
    assert frames[-1].endswith("\n")
    assert "workers 1" in frames[1]


def test_writer_pads_over_a_longer_previous_line() -> None:
    stream, clock = FakeTerminal(), FakeClock()
    writer = ProgressWriter(stream, min_interval=0, clock=clock)
    clock.now = 1.0
    writer.update(Counters(submitted=10, resolved=1, workers=1, retries=5, failed=3))
    clock.now = 2.0
    writer.update(Counters(submitted=10, resolved=2, workers=1))
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second) == len(first)


def test_writer_forced_and_as_a_callback() -> None:
    stream = io.StringIO()
    callback: ProgressCallback = ProgressWriter(stream, force=True, clock=FakeClock())
    callback(Counters(submitted=2, resolved=2))
    assert stream.getvalue().startswith("\r[####################]  2/2")


def test_close_without_drawing_writes_nothing() -> None:
    stream = FakeTerminal()
    ProgressWriter(stream).close()
    assert stream.getvalue() == ""


def test_closed_stream_counts_as_not_a_terminal() -> None:
    class Closed(io.StringIO):
        def isatty(self) -> bool:
            raise ValueError("I/O operation on closed file")

    assert not ProgressWriter(Closed()).enabled


def test_a_log_line_clears_the_bar_and_the_bar_is_redrawn_after_it() -> None:
    stream = FakeTerminal()
    writer = ProgressWriter(stream, min_interval=0, clock=FakeClock())
    writer.update(Counters(submitted=10, resolved=3, workers=2))
    bar = console_for(stream).status_line
    assert bar.startswith("[######") and "3/10" in bar
    logger = logging.getLogger("tests.farm.console")
    logger.propagate = False
    handler = ConsoleHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        logger.warning("machine b is down")
    finally:
        logger.removeHandler(handler)
    blank = " " * len(bar)
    assert stream.getvalue() == f"\r{bar}\r{blank}\rWARNING machine b is down\n{bar}"
    console_for(stream).write_line("a worker's line")
    assert stream.getvalue().endswith(f"{bar}\r{blank}\ra worker's line\n{bar}")
    writer.close()
    assert stream.getvalue().endswith(f"{bar}\n") and console_for(stream).status_line == ""
    console_for(stream).write_line("after the bar")  # no bar: no clearing, no redraw
    assert stream.getvalue().endswith(f"{bar}\nafter the bar\n")


def test_the_progress_line_counts_machines_down() -> None:
    assert "machines down 1" in format_progress(Counters(submitted=1, machines_down=1), 1.0)
    assert "machines down" not in format_progress(Counters(submitted=1), 1.0)


def test_the_progress_line_counts_duplicates_and_replays() -> None:
    line = format_progress(Counters(submitted=9, duplicates_started=3, duplicates_won=2, replayed=4), 1.0)
    assert "speculated 3 (won 2)" in line and "from journal 4" in line
    plain = format_progress(Counters(submitted=9), 1.0)
    assert "speculated" not in plain and "journal" not in plain
