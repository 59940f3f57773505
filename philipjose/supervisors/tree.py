"""Nested supervisors as child specs, and whole trees started from a config.

- :func:`supervisor_spec` makes the child spec of a nested supervisor (``type="supervisor"``,
  ``shutdown="infinity"``), checking its flags and children at once.
- :func:`from_config` loads a TOML file or dict (see :mod:`.config`) and starts the tree linked to
  the caller.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from philipjose.supervisors.api import _spawn_supervisor
from philipjose.supervisors.config import SubtreeConfig, TreeConfig, load_config
from philipjose.supervisors.spec import ChildSpec, Shutdown, SupFlags, start_function, validate_children
from philipjose.supervisors.supervisor import SIMPLE, STATIC
from philipjose.term.types import Pid

__all__ = ["from_config", "start_tree", "supervisor_spec", "tree_children"]


@start_function
async def _start_subtree(specs: tuple[ChildSpec, ...], flags: SupFlags, name: Any) -> Pid:
    mode = SIMPLE if flags.strategy == "simple_one_for_one" else STATIC
    return await _spawn_supervisor(True, flags, mode, specs, name)


def supervisor_spec(
    id: Hashable,
    children: Iterable[object],
    *,
    strategy: str = "one_for_one",
    intensity: int = 1,
    period: int = 5,
    auto_shutdown: str = "never",
    name: Any = None,
    restart: str = "permanent",
    shutdown: Shutdown = "infinity",
    significant: bool = False,
) -> ChildSpec:
    """The child spec of a nested supervisor with these children and flags (validated now; raises
    ``SpecError``). ``restart``, ``shutdown`` (default ``"infinity"``, as OTP advises for
    supervisors) and ``significant`` are its own child-spec fields in the parent."""
    flags = SupFlags(strategy, intensity, period, auto_shutdown)
    specs = validate_children(children, flags)
    return ChildSpec(
        id=id,
        start=_start_subtree,
        args=(specs, flags, name),
        restart=restart,
        shutdown=shutdown,
        type="supervisor",
        significant=significant,
        modules=("philipjose.supervisors",),
    )


def tree_children(tree: TreeConfig) -> tuple[ChildSpec, ...]:
    """The top supervisor's children of a loaded tree, nested supervisors made into child specs."""
    result: list[ChildSpec] = []
    for child in tree.children:
        if isinstance(child, SubtreeConfig):
            sub = child.tree
            result.append(
                ChildSpec(
                    id=child.id,
                    start=_start_subtree,
                    args=(tree_children(sub), sub.flags, sub.name),
                    restart=child.restart,
                    shutdown=child.shutdown,
                    type="supervisor",
                    significant=child.significant,
                    modules=("philipjose.supervisors",),
                )
            )
        else:
            result.append(child)
    return tuple(result)


async def start_tree(tree: TreeConfig) -> Pid:
    """Start a loaded tree's top supervisor linked to the caller; returns its pid (raises
    ``StartError`` as :func:`~philipjose.supervisors.start_link`)."""
    return await _start_subtree(tree_children(tree), tree.flags, tree.name)


async def from_config(source: str | os.PathLike[str] | Mapping[str, Any] | TreeConfig) -> Pid:
    """Load a tree (TOML path, dict or loaded ``TreeConfig``), check all of it (``ConfigError``
    before anything starts), and start it linked to the caller. Returns the top supervisor's pid.
    The ``[node]`` table is not acted upon here (``philipjose run`` uses it)."""
    tree = source if isinstance(source, TreeConfig) else load_config(source)
    return await start_tree(tree)
