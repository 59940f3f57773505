"""A local worker's lane: the frame codec (sans-I/O), both ends over real pipes, the worker's lane
thread, and farms whose local workers use it (or not)."""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from philipjose import farm
from philipjose.farm import worker as w
from philipjose.farm.interrupt import Interrupter
from philipjose.farm.lane import (
    FarmerLane,
    LaneDecoder,
    LaneError,
    WorkerLane,
    encode_batch,
    parse_lane_fds,
)
from philipjose.farm.shipping import Returned, decode_outcome, dumps_task

_ids = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_batches = st.lists(st.lists(st.tuples(_ids, st.binary(max_size=300)), max_size=6), max_size=5)


def _decode_all(decoder: LaneDecoder) -> list[list[tuple[int, bytes]]]:
    out = []
    while (batch := decoder.next_batch()) is not None:
        out.append(batch)
    return out


@given(_batches)
def test_frames_decode_whole_byte_by_byte_and_with_trailing_bytes(
    batches: list[list[tuple[int, bytes]]],
) -> None:
    data = b"".join(encode_batch(b) for b in batches)
    whole = LaneDecoder(1 << 20)
    whole.receive_data(data)
    assert _decode_all(whole) == batches
    one = LaneDecoder(1 << 20)
    got: list[list[tuple[int, bytes]]] = []
    for i in range(len(data)):
        one.receive_data(data[i : i + 1])
        got += _decode_all(one)
    assert got == batches
    trailing = LaneDecoder(1 << 20)
    next_frame = encode_batch([(7, b"next")])
    trailing.receive_data(data + next_frame[:-1])
    assert _decode_all(trailing) == batches  # the cut frame waits for its last byte
    trailing.receive_data(next_frame[-1:])
    assert _decode_all(trailing) == [[(7, b"next")]]


def test_a_frame_over_the_limit_is_refused_from_its_header() -> None:
    decoder = LaneDecoder(100)
    decoder.receive_data(encode_batch([(1, b"x" * 200)])[:4])  # the length alone
    with pytest.raises(LaneError, match="over the limit of 100") as caught:
        decoder.next_batch()
    assert isinstance(caught.value, ValueError)
    at_limit = LaneDecoder(len(encode_batch([(1, b"x" * 88)])) - 4)
    at_limit.receive_data(encode_batch([(1, b"x" * 88)]))
    assert at_limit.next_batch() == [(1, b"x" * 88)]


@pytest.mark.parametrize(
    "body",
    [b"\x00" * 5, (1).to_bytes(8, "big") + (10).to_bytes(4, "big") + b"short"],
    ids=["a cut item header", "an item longer than its frame"],
)
def test_a_frame_whose_items_do_not_add_up_is_refused(body: bytes) -> None:
    decoder = LaneDecoder(1 << 20)
    decoder.receive_data(len(body).to_bytes(4, "big") + body)
    with pytest.raises(LaneError):
        decoder.next_batch()


def test_lane_descriptors_parse() -> None:
    assert parse_lane_fds("5,8") == (5, 8)
    for bad in ("5", "5,", ",8", "a,b", "-1,2", "5;8"):
        with pytest.raises(ValueError, match="--lane"):
            parse_lane_fds(bad)


async def test_the_two_ends_over_real_pipes_carry_big_batches_both_ways_until_the_worker_closes() -> None:
    task_r, task_w = os.pipe()
    out_r, out_w = os.pipe()
    farmer = FarmerLane(task_w, out_r, max_frame=1 << 24)
    worker = WorkerLane(task_r, out_w, max_frame=1 << 24)
    big = os.urandom(3 << 20)  # far over a pipe's buffer: the farmer's writer task sends the rest
    sent = [[(1, b"one"), (2, big)], [(3, b"")], [(-1, b"init")]]
    echoed: list[list[tuple[int, bytes]]] = []

    def echo() -> None:  # the worker's thread: what comes goes back, until the farmer closes its end
        while (batches := worker.receive(block=True)) is not None:
            for batch in batches:
                worker.send([(task_id, payload[::-1]) for task_id, payload in batch])
        os.close(out_w)  # the worker's end closes: the farmer's serve() ends

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()

    async def deliver(batch: list[tuple[int, bytes]]) -> None:
        echoed.append(batch)
        if len(echoed) == len(sent):
            os.close(task_w)  # as the farm would: no more tasks (the worker sees end of file)

    for batch in sent:
        farmer.send(batch)  # never blocks, even for 3 MiB
    with trio.fail_after(30):
        await farmer.serve(deliver)
    assert echoed == [[(t, p[::-1]) for t, p in batch] for batch in sent]
    assert (farmer.frames_sent, farmer.frames_received) == (3, 3)
    thread.join(5)
    os.close(task_r)
    os.close(out_r)


async def test_the_farmer_end_drops_what_it_sends_once_the_worker_end_is_gone_and_refuses_garbage() -> None:
    task_r, task_w = os.pipe()
    out_r, out_w = os.pipe()
    farmer = FarmerLane(task_w, out_r, max_frame=1000)
    os.close(task_r)  # the worker died
    farmer.send([(1, b"x" * 100_000)])  # a broken pipe: dropped, no exception
    farmer.send([(2, b"y")])
    os.write(out_w, b"\xff\xff\xff\xff")  # a frame of 4 GiB announced

    async def deliver(batch: list[tuple[int, bytes]]) -> None:
        raise AssertionError("nothing valid was sent")

    with pytest.raises(LaneError, match="over the limit"), trio.fail_after(10):
        await farmer.serve(deliver)
    os.close(out_w)
    farmer.close()
    farmer.close()  # idempotent


def _run_lane_thread(tasks: list[list[tuple[int, bytes]]], revoked: set[int]) -> tuple[list, list[str]]:
    """Feed ``tasks`` to the worker's lane thread over real pipes; its reports, and its failures."""
    task_r, task_w = os.pipe()
    out_r, out_w = os.pipe()
    lane = WorkerLane(task_r, out_w, max_frame=1 << 20)
    failures: list[str] = []
    thread = threading.Thread(
        target=w._serve_lane, args=(lane, revoked, 1 << 20, Interrupter(), failures.append), daemon=True
    )
    thread.start()
    for batch in tasks:
        os.write(task_w, encode_batch(batch))
    os.close(task_w)
    thread.join(30)
    assert not thread.is_alive()
    os.close(out_w)
    data = b""
    while chunk := os.read(out_r, 1 << 16):
        data += chunk
    os.close(out_r)
    os.close(task_r)
    decoder = LaneDecoder(1 << 20)
    decoder.receive_data(data)
    return _decode_all(decoder), failures


def test_the_worker_end_reads_descriptors_over_fd_setsize() -> None:
    # a big farmer hands its children descriptors of high numbers (pass_fds keeps them)
    task_r, task_w = os.pipe()
    out_r, out_w = os.pipe()
    high = [os.dup2(fd, 1500 + i) for i, fd in enumerate((task_r, out_w))]
    for fd in (task_r, out_w):
        os.close(fd)
    try:
        lane = WorkerLane(high[0], high[1], max_frame=1 << 10)
        threading.Timer(0.05, os.write, (task_w, encode_batch([(9, b"late")]))).start()
        assert lane.receive(block=True) == [[(9, b"late")]]  # it waited for the frame
        lane.send([(9, b"done")])
        assert os.read(out_r, 100) == encode_batch([(9, b"done")])
    finally:
        for fd in (*high, task_w, out_r):
            os.close(fd)


def test_the_worker_lane_thread_runs_tasks_in_order_and_skips_revoked_ones() -> None:
    payloads = [(i, dumps_task(divmod, (i, 3))) for i in range(6)]
    reports, failures = _run_lane_thread([payloads[:3], payloads[3:]], revoked={4})
    assert failures == []
    outcomes = [(t, p) for report in reports for t, p in report]
    assert sorted(t for t, _ in outcomes) == list(range(6))
    assert [t for t, _ in outcomes if t != 4] == [0, 1, 2, 3, 5]  # in order (4 is reported when seen)
    by_id = dict(outcomes)
    assert by_id[4] == b""  # revoked while queued: an empty outcome, not run
    for i in (0, 1, 2, 3, 5):
        value = decode_outcome(by_id[i])
        assert isinstance(value, Returned) and value.value == divmod(i, 3)


def test_a_malformed_frame_ends_the_worker_lane_thread_with_its_reason() -> None:
    task_r, task_w = os.pipe()
    out_r, out_w = os.pipe()
    lane = WorkerLane(task_r, out_w, max_frame=1 << 10)
    failures: list[str] = []
    thread = threading.Thread(
        target=w._serve_lane, args=(lane, set(), 1 << 10, Interrupter(), failures.append), daemon=True
    )
    thread.start()
    os.write(task_w, (1 << 20).to_bytes(4, "big"))
    thread.join(10)
    assert not thread.is_alive()
    assert len(failures) == 1 and "LaneError" in failures[0] and "over the limit" in failures[0]
    for fd in (task_r, task_w, out_r, out_w):
        os.close(fd)


def _slow(seconds: float) -> float:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return seconds


@pytest.mark.parametrize("lanes", [True, False], ids=["lanes", "node only"])
async def test_a_local_farm_runs_through_its_lanes_or_without(lanes: bool) -> None:

    def init() -> None:
        os.environ["PJ_LANE_TEST"] = "ready"

    def ready(x: int) -> tuple[str, int]:
        return os.environ.get("PJ_LANE_TEST", "missing"), x

    async with farm.Farm(workers=2, initializer=init, lanes=lanes) as f:
        results = await f.map(ready, range(20))
        assert results == [("ready", x) for x in range(20)]
        assert await f.submit(len, b"z" * (2 << 20)) == 2 << 20
        slow = f.submit(_slow, 30.0)
        while not (holders := [s for s in f._slots if s.pid is not None and f._sched.running(s.pid)]):
            await trio.sleep(0.01)
        (holder,) = holders
        slow.cancel()  # a revocation over the node stops the task that came through the lane
        with pytest.raises(concurrent.futures.CancelledError):
            await slow
        while holder.pid is not None and f._sched.running(holder.pid):
            await trio.sleep(0.01)
        assert holder.doomed is None  # it reported the task: interrupted, not killed
        assert await f.submit(divmod, 7, 2) == (3, 1)
        frames = [(s.lane.frames_sent, s.lane.frames_received) for s in f._slots if s.lane is not None]
        if lanes:
            assert len(frames) == 2 and sum(sent for sent, _ in frames) > 0
            assert all(received > 0 for sent, received in frames if sent)
        else:
            assert frames == []
