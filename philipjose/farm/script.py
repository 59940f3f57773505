"""``philipjose farm run SCRIPT``: load a user script and run its ``main(farm)`` on a ready farm.

The script is imported under a private module name (so its ``if __name__ == "__main__":`` block does
not run) and registered with cloudpickle to be shipped *by value*: its functions, lambdas and closures
reach the workers without the script being installed there. ``sys.argv`` is ``[SCRIPT, *ARGS]`` while
it runs. ``main`` may be ``async def main(farm)`` or a plain function returning an awaitable or a value;
a value other than None is printed.

Ctrl-C (SIGINT) or SIGTERM stops the script's ``main`` (it is cancelled), then the farm closes as
usual: its workers, which run in process groups of their own and so never see the terminal's
SIGINT, are told to stop and reaped, and no worker is started again. The command then prints one
line, ``interrupted: N of M tasks done``, and exits 130 (SIGINT) or 143 (SIGTERM). A second signal
while the farm closes kills the workers at once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import signal
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from philipjose.farm.errors import FarmError
from philipjose.farm.farm import DEFAULT_FARM_NET_TICKTIME, Farm
from philipjose.farm.progress import ProgressWriter
from philipjose.farm.shipping import ship_by_value
from philipjose.node.tls import TLSConfig

__all__ = ["load_script", "run_script"]


def load_script(path: str | os.PathLike[str]) -> types.ModuleType:
    """Import the script at ``path`` as a module shipped by value; :class:`FarmError` without ``main``."""
    file = Path(path).resolve()
    if not file.is_file():
        raise FarmError(f"{path}: no such script")
    name = "pj_farm_script_" + hashlib.sha256(str(file).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise FarmError(f"{path}: cannot be loaded as a Python script")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    ship_by_value(module)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "main", None)):
        raise FarmError(f"{path}: defines no main(farm) function")
    return module


def run_script(
    path: str | os.PathLike[str],
    argv: Sequence[str] = (),
    *,
    workers: int | None = None,
    machines: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    tls: TLSConfig | None = None,
    net_ticktime: float = DEFAULT_FARM_NET_TICKTIME,
) -> int:
    """Run ``path``'s ``main(farm)`` on a farm of ``workers`` local workers or of ``machines``.

    ``progress``: True draws the bar on stderr, False never, None only when stderr is a terminal.
    ``tls``: TLS between the farmer and its workers (see :class:`~philipjose.farm.farm.Farm`).
    ``net_ticktime``: the farm's (see :class:`~philipjose.farm.farm.Farm`). Returns the exit status:
    0, or 130/143 after SIGINT/SIGTERM (see the module docstring); errors from the script propagate.
    """
    module = load_script(path)
    writer = None if progress is False else ProgressWriter(sys.stderr, force=bool(progress))
    interrupted: list[tuple[int, int, int]] = []  # (signal, tasks done, tasks submitted)
    farms: list[Farm] = []

    async def watch(signals: Any, work: trio.CancelScope) -> None:
        async for signum in signals:
            if not interrupted:
                done = farms[0].counters if farms else None
                interrupted.append((signum, done.resolved if done else 0, done.submitted if done else 0))
                work.cancel()
            elif farms:
                farms[0]._kill_workers()  # a second signal: do not wait for them

    async def go() -> Any:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                work = trio.CancelScope()
                nursery.start_soon(watch, signals, work)
                try:
                    with work:
                        async with Farm(
                            workers, machines, progress=writer, tls=tls, net_ticktime=net_ticktime
                        ) as farm:
                            farms.append(farm)
                            result = module.main(farm)
                            if inspect.isawaitable(result):
                                result = await result
                            return result
                    return None
                finally:
                    nursery.cancel_scope.cancel()

    saved = sys.argv
    sys.argv = [str(path), *argv]
    try:
        result = trio.run(go)
    finally:
        sys.argv = saved
        if writer is not None:
            writer.close()
    if interrupted:
        signum, done, total = interrupted[0]
        print(f"interrupted: {done} of {total} tasks done", file=sys.stderr)
        return 128 + signum
    if result is not None:
        print(result)
    return 0
