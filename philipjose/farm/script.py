"""``philipjose farm run SCRIPT``: load a user script and run its ``main(farm)`` on a ready farm.

The script is imported under a private module name (so its ``if __name__ == "__main__":`` block does
not run) and registered with cloudpickle to be shipped *by value*: its functions, lambdas and closures
reach the workers without the script being installed there. While it runs, the script's folder is
first on ``sys.path`` (as ``python SCRIPT`` has it), so it imports the modules beside it; those are
shipped by value too (a finder placed before the path finder registers each module or package it
imports from that folder), so workers need none of them either. ``sys.argv`` is ``[SCRIPT, *ARGS]``
while it runs. ``main`` may be ``async def main(farm)`` or a plain function returning an awaitable or a value;
a value other than None is printed.

Ctrl-C (SIGINT) or SIGTERM stops the script's ``main`` (it is cancelled), then the farm closes as
usual: its workers, which run in process groups of their own and so never see the terminal's
SIGINT, are told to stop and reaped, and no worker is started again. The command then prints one
line, ``interrupted: N of M tasks done``, and exits 130 (SIGINT) or 143 (SIGTERM). A second signal
while the farm closes kills the workers at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import signal
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from philipjose.farm.console import console_for
from philipjose.farm.errors import FarmError
from philipjose.farm.farm import DEFAULT_FARM_NET_TICKTIME, Farm
from philipjose.farm.journal import Journal
from philipjose.farm.machines import Machine
from philipjose.farm.progress import ProgressWriter
from philipjose.farm.shipping import ship_by_value
from philipjose.farm.slurm import Slurm
from philipjose.node.tls import TLSConfig

__all__ = ["load_script", "run_script", "script_imports"]


class _ShippingLoader(importlib.abc.Loader):
    """A loader that registers the module it executes to be shipped by value, then runs ``inner``."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        ship_by_value(module)  # the module is in sys.modules already, as cloudpickle needs
        self._inner.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self._inner, name)


class _SiblingFinder(importlib.abc.MetaPathFinder):
    """Finds top-level modules and packages in ``folder`` and has them shipped by value (their
    submodules are covered: cloudpickle ships a registered package's submodules by value too)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is not None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, [self.folder])
        if spec is None or spec.loader is None:
            return None
        spec.loader = _ShippingLoader(spec.loader)
        return spec


@contextlib.contextmanager
def script_imports(path: str | os.PathLike[str]) -> Iterator[None]:
    """While inside: the folder of the script at ``path`` first on ``sys.path``, and modules imported
    from it shipped by value (see the module doc). Modules already imported from there are
    registered too. On exit ``sys.path`` and the import system are as before (modules stay imported).
    """
    folder = str(Path(path).resolve().parent)
    finder = _SiblingFinder(folder)
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and os.path.dirname(os.path.abspath(file)) == folder:
            ship_by_value(module)
    sys.path.insert(0, folder)
    index = next(
        (i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder), len(sys.meta_path)
    )
    sys.meta_path.insert(index, finder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


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
    machines: Sequence[Machine | Slurm] | str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    tls: TLSConfig | None = None,
    net_ticktime: float = DEFAULT_FARM_NET_TICKTIME,
    speculation: bool = False,
    journal: str | os.PathLike[str] | None = None,
    rerun_failed: bool = True,
    dashboard: int | str | None = None,
    farm_options: Mapping[str, Any] | None = None,
    on_start: Callable[[Farm], None] | None = None,
) -> int:
    """Run ``path``'s ``main(farm)`` on a farm of ``workers`` local workers or of ``machines``.

    ``progress``: True draws the bar on stderr, False never, None only when stderr is a terminal.
    ``tls``: TLS between the farmer and its workers (see :class:`~philipjose.farm.farm.Farm`).
    ``net_ticktime``, ``speculation``: the farm's (see :class:`~philipjose.farm.farm.Farm`).
    ``journal``: the path of the farm's journal, written for this script (``rerun_failed``: see
    :class:`~philipjose.farm.journal.Journal`). ``dashboard``: the farm's (its URL is printed on
    stderr once the farm is up). ``farm_options``: more of the Farm's options
    (``accept_workers``, ``cookie``, ...); ``on_start(farm)`` is called once the farm is up.
    Returns the exit status: 0, or 130/143 after SIGINT/SIGTERM (see the module docstring); errors
    from the script propagate.
    """
    with script_imports(path):
        book = None if journal is None else Journal(journal, script=path, rerun_failed=rerun_failed)
        saved = sys.argv
        sys.argv = [str(path), *argv]  # from the import of the script on, as `python SCRIPT ARGS` has it
        try:
            options = dict(farm_options or {}, speculation=speculation, journal=book, dashboard=dashboard)
            return _run_script(path, argv, workers, machines, progress, tls, net_ticktime, options, on_start)
        finally:
            sys.argv = saved


def _run_script(
    path: str | os.PathLike[str],
    argv: Sequence[str],
    workers: int | None,
    machines: Sequence[Machine | Slurm] | str | os.PathLike[str] | None,
    progress: bool | None,
    tls: TLSConfig | None,
    net_ticktime: float,
    options: dict[str, Any],
    on_start: Callable[[Farm], None] | None,
) -> int:
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
                            workers,
                            machines,
                            progress=writer,
                            tls=tls,
                            net_ticktime=net_ticktime,
                            **options,
                        ) as farm:
                            farms.append(farm)
                            if farm.dashboard_url is not None:
                                console_for(sys.stderr).write_line(f"dashboard: {farm.dashboard_url}")
                            if on_start is not None:
                                on_start(farm)
                            result = module.main(farm)
                            if inspect.isawaitable(result):
                                result = await result
                            return result
                    return None
                finally:
                    nursery.cancel_scope.cancel()

    try:
        result = trio.run(go)
    finally:
        if writer is not None:
            writer.close()
    if interrupted:
        signum, done, total = interrupted[0]
        print(f"interrupted: {done} of {total} tasks done", file=sys.stderr)
        return 128 + signum
    if result is not None:
        print(result)
    return 0
