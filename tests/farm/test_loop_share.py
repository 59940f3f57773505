"""A big map shares the farmer's loop: its tasks are queued a slice at a time, with the loop free to
run everything else (ticks, workers' reports, the dashboard) between slices, in the async ``Farm`` and
in the ``Executor``. Each test looks at how many tasks were submitted when another task of the loop
first ran: all of them if the map held the loop until the last was queued."""

from __future__ import annotations

import trio

from philipjose import farm

N = 20_000  # tasks: queueing them takes far longer than one slice (about 5 ms) on any machine


async def test_a_big_map_lets_the_loop_run_while_it_queues_its_tasks() -> None:
    async with farm.Farm(workers=1) as f:
        seen: list[int] = []

        async def watch() -> None:
            while not seen:
                await trio.lowlevel.checkpoint()
                if f.counters.submitted:
                    seen.append(f.counters.submitted)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            results = await f.map(abs, range(-N, 0))
        assert results == list(range(N, 0, -1))
        assert 0 < seen[0] < N


def test_an_executor_map_of_many_tasks_lets_the_farms_loop_run() -> None:
    with farm.Executor(1) as ex:
        results = ex.map(abs, range(-N, 0))
        # runs on the farm's loop after the first hand-over of the map's tasks, before the next
        seen = trio.from_thread.run_sync(lambda: ex._farm.counters.submitted, trio_token=ex._token)
        assert list(results) == list(range(N, 0, -1))
    assert 0 < seen < N
