"""Supervision trees from TOML (or an equivalent dict), checked whole before anything starts.

The format (documented with examples in ``docs/supervision.md``)::

    strategy = "one_for_one"        # one_for_one | one_for_all | rest_for_one | simple_one_for_one
    intensity = 1                   # max restarts ...
    period = 5                      # ... within this many seconds
    auto_shutdown = "never"         # never | any_significant | all_significant
    name = "top"                    # optional: register the top supervisor under this name
    python_path = ["."]             # optional: directories (relative to this file) put on sys.path

    [node]                          # optional: run as a distributed node
    name = "tree@localhost"
    cookie = "secret"
    tls_certfile = "node.pem"       # optional: TLS distribution only (paths relative to this file;
    tls_keyfile = "node.key"        #   tls_keyfile, tls_cafile and tls_verify = "peer" | "none"
    tls_cafile = "ca.pem"           #   as --tls-* of philipjose.node.tls)
    dist_buf_busy_limit = 1048576   # optional: bytes queued per connection before senders are held
    hidden = false                  # optional: true makes a hidden node (like erl -hidden)
    binaries = "bytes"              # optional: "str" shows UTF-8 binaries from other nodes as str
    none = "undefined"              # optional: "nil" sends None as nil and reads nil as None
    max_message_size = 1073741824   # optional: the largest message sent or received, in bytes
    dashboard = 8050                # optional: serve the node's live web page (port, or "HOST:PORT")

    [[children]]                    # a worker
    id = "cache"
    start = "mypackage.workers:cache"   # package.module:callable
    args = [1000]
    restart = "permanent"           # permanent | transient | temporary
    shutdown = 5                    # seconds | "brutal_kill" | "infinity"
    type = "worker"                 # worker | supervisor
    significant = false

    [[children]]                    # a nested supervisor: a child with its own children
    id = "pool"
    strategy = "rest_for_one"
    [[children.children]]
    id = "conn"
    start = "mypackage.workers:conn"

A child with ``children`` is a nested supervisor (``type`` defaults to ``"supervisor"``, ``shutdown``
to ``"infinity"``) and takes the supervisor keys (``strategy``, ``intensity``, ``period``,
``auto_shutdown``, ``name``) besides ``id``, ``restart``, ``shutdown`` and ``significant``; it has no
``start``. Every other child needs ``id`` and ``start``.

:func:`load_config` checks everything first — unknown keys, unknown strategy, duplicate ids,
unimportable callables, bad shutdown values, significant children without ``auto_shutdown``, ... —
and raises :class:`~philipjose.supervisors.errors.ConfigError` naming the file, the key path (like
``children[1].children[0].shutdown``) and the reason. Loading imports the modules named by ``start``
(running their top-level code) and may prepend ``python_path`` entries to ``sys.path``.
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from philipjose._hostport import parse_host_port
from philipjose.supervisors.errors import ConfigError, SpecError
from philipjose.supervisors.spec import ChildSpec, Shutdown, SupFlags
from philipjose.term.styles import BINARIES, NONES

__all__ = ["NodeConfig", "SubtreeConfig", "TreeConfig", "import_callable", "load_config"]

_FLAG_KEYS = ("strategy", "intensity", "period", "auto_shutdown")
_TOP_KEYS = (*_FLAG_KEYS, "name", "python_path", "node", "children")
_WORKER_KEYS = ("id", "start", "args", "restart", "shutdown", "type", "significant", "modules")
_SUBTREE_KEYS = ("id", "children", "restart", "shutdown", "type", "significant", *_FLAG_KEYS, "name")
_NODE_KEYS = (
    "name",
    "cookie",
    "tls_certfile",
    "tls_keyfile",
    "tls_cafile",
    "tls_verify",
    "dist_buf_busy_limit",
    "hidden",
    "binaries",
    "none",
    "max_message_size",
    "dashboard",
)
_TLS_FILE_KEYS = ("tls_certfile", "tls_keyfile", "tls_cafile")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """The ``[node]`` table: the node's name, (optional) cookie and (optional) TLS files (absolute
    paths; ``tls_verify`` is ``"peer"`` or ``"none"``; no ``tls_certfile``: plain TCP), and
    (optional) ``dist_buf_busy_limit`` in bytes (None: the node's default, 1 MiB), and ``hidden``
    (default False: a visible node, like ``erl``; True: like ``erl -hidden``), and ``binaries``
    (``"bytes"`` or ``"str"``) and ``none`` (``"undefined"`` or ``"nil"``), the node options of
    :mod:`philipjose.term.styles`, and ``max_message_size`` in bytes (None: the
    node's default, 1 GiB), and ``dashboard``: where to serve the node's web page (a port, or
    ``"HOST:PORT"``; None: no dashboard)."""

    name: str
    cookie: str | None = None
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    tls_cafile: str | None = None
    tls_verify: str = "peer"
    dist_buf_busy_limit: int | None = None
    hidden: bool = False
    binaries: str = "bytes"
    none: str = "undefined"
    max_message_size: int | None = None
    dashboard: int | str | None = None


@dataclass(frozen=True, slots=True)
class TreeConfig:
    """One supervisor of a tree: flags, optional registered name, and children in start order."""

    flags: SupFlags
    children: tuple[ChildSpec | SubtreeConfig, ...]
    name: str | None = None
    node: NodeConfig | None = None
    source: str = "<dict>"


@dataclass(frozen=True, slots=True)
class SubtreeConfig:
    """A nested supervisor as a child: its child-spec fields and its own tree."""

    id: str
    tree: TreeConfig
    restart: str = "permanent"
    shutdown: Shutdown = "infinity"
    significant: bool = False


def import_callable(reference: str) -> Callable[..., Any]:
    """Import ``"package.module:callable"`` (the part after ``:`` may be dotted, ``mod:Class.attr``).

    Raises ``ValueError`` with the reason when the reference is malformed, the module cannot be
    imported, the attribute is missing, or it is not callable.
    """
    module_name, colon, attribute = reference.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"must be 'package.module:callable', got {reference!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module's own code failed: report it as a config error
        raise ValueError(f"importing module {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise ValueError(f"{reference!r} is not callable")
    return target  # type: ignore[no-any-return]


class _Loader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.source, key, reason)

    def check_keys(self, table: Mapping[str, Any], allowed: Sequence[str], path: str, what: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(
                    _join(path, str(key)), f"unknown key in {what} (allowed: {', '.join(allowed)})"
                )

    def flags(self, table: Mapping[str, Any], path: str) -> SupFlags:
        values = {k: table[k] for k in _FLAG_KEYS if k in table}
        try:
            return SupFlags(**values)
        except SpecError as exc:
            raise self.fail(_join(path, exc.key), exc.reason) from None

    def name(self, table: Mapping[str, Any], path: str) -> str | None:
        name = table.get("name")
        if name is not None and (not isinstance(name, str) or not name):
            raise self.fail(_join(path, "name"), f"must be a non-empty string, got {name!r}")
        return name

    def tree(self, table: Mapping[str, Any], path: str) -> TreeConfig:
        flags = self.flags(table, path)
        raw_children = table.get("children", [])
        if not isinstance(raw_children, list | tuple):
            raise self.fail(_join(path, "children"), f"must be an array of tables, got {raw_children!r}")
        children: list[ChildSpec | SubtreeConfig] = []
        seen: set[Any] = set()
        for index, raw in enumerate(raw_children):
            child_path = _join(path, f"children[{index}]")
            if not isinstance(raw, Mapping):
                raise self.fail(child_path, f"must be a table, got {raw!r}")
            child = self.subtree(raw, child_path) if "children" in raw else self.worker(raw, child_path)
            if child.id in seen:
                raise self.fail(_join(child_path, "id"), f"duplicate child id {child.id!r}")
            seen.add(child.id)
            if child.significant and flags.auto_shutdown == "never":
                raise self.fail(
                    _join(child_path, "significant"),
                    "a significant child needs auto_shutdown 'any_significant' or 'all_significant'",
                )
            children.append(child)
        if flags.strategy == "simple_one_for_one" and len(children) != 1:
            raise self.fail(
                _join(path, "children"),
                f"simple_one_for_one needs exactly one child (its template), got {len(children)}",
            )
        return TreeConfig(flags, tuple(children), self.name(table, path), source=self.source)

    def child_id(self, table: Mapping[str, Any], path: str) -> str:
        if "id" not in table:
            raise self.fail(_join(path, "id"), "missing (every child needs an id)")
        cid = table["id"]
        if not isinstance(cid, str) or not cid:
            raise self.fail(_join(path, "id"), f"must be a non-empty string, got {cid!r}")
        return cid

    def worker(self, table: Mapping[str, Any], path: str) -> ChildSpec:
        self.check_keys(table, _WORKER_KEYS, path, "a child (a nested supervisor has 'children')")
        cid = self.child_id(table, path)
        if "start" not in table:
            raise self.fail(_join(path, "start"), "missing (give 'package.module:callable')")
        start = table["start"]
        if isinstance(start, str):
            try:
                start = import_callable(start)
            except ValueError as exc:
                raise self.fail(_join(path, "start"), str(exc)) from None
        elif not callable(start):
            raise self.fail(_join(path, "start"), f"must be 'package.module:callable', got {start!r}")
        if isinstance(start, type) and not hasattr(start, "start_link"):
            raise self.fail(_join(path, "start"), f"class {start.__qualname__} is not a GenServer subclass")
        args = table.get("args", [])
        if not isinstance(args, list | tuple):
            raise self.fail(_join(path, "args"), f"must be an array, got {args!r}")
        fields = {
            k: table[k] for k in ("restart", "shutdown", "type", "significant", "modules") if k in table
        }
        try:
            return ChildSpec(id=cid, start=start, args=tuple(args), **fields)
        except SpecError as exc:
            raise self.fail(_join(path, exc.key), exc.reason) from None

    def subtree(self, table: Mapping[str, Any], path: str) -> SubtreeConfig:
        self.check_keys(table, _SUBTREE_KEYS, path, "a nested supervisor")
        cid = self.child_id(table, path)
        if table.get("type", "supervisor") != "supervisor":
            raise self.fail(
                _join(path, "type"), f"a child with children must be 'supervisor', got {table['type']!r}"
            )
        tree = self.tree(table, path)
        try:
            # Validate restart/shutdown/significant with the child-spec rules.
            probe = ChildSpec(
                id=cid,
                start=_never_called,
                type="supervisor",
                **{k: table[k] for k in ("restart", "shutdown", "significant") if k in table},
            )
        except SpecError as exc:
            raise self.fail(_join(path, exc.key), exc.reason) from None
        assert probe.shutdown is not None
        return SubtreeConfig(cid, tree, probe.restart, probe.shutdown, probe.significant)

    def node(self, table: object, base: Path) -> NodeConfig | None:
        if table is None:
            return None
        if not isinstance(table, Mapping):
            raise self.fail("node", f"must be a table, got {table!r}")
        self.check_keys(table, _NODE_KEYS, "node", "[node]")
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail("node.name", f"must be a non-empty string, got {name!r}")
        cookie = table.get("cookie")
        if cookie is not None and (not isinstance(cookie, str) or not cookie):
            raise self.fail("node.cookie", "must be a non-empty string")
        files: dict[str, str] = {}
        for key in _TLS_FILE_KEYS:
            value = table.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise self.fail(f"node.{key}", f"must be a file name, got {value!r}")
            files[key] = os.fspath((base / value).resolve())
        if files and "tls_certfile" not in files:
            raise self.fail("node", "tls_keyfile and tls_cafile need tls_certfile")
        verify = table.get("tls_verify", "peer")
        if verify not in ("peer", "none"):
            raise self.fail("node.tls_verify", f'must be "peer" or "none", got {verify!r}')
        limit = table.get("dist_buf_busy_limit")
        if limit is not None and (type(limit) is not int or limit <= 0):
            raise self.fail("node.dist_buf_busy_limit", f"must be a positive integer (bytes), got {limit!r}")
        hidden = table.get("hidden", False)
        if type(hidden) is not bool:
            raise self.fail("node.hidden", f"must be true or false, got {hidden!r}")
        binaries = table.get("binaries", "bytes")
        if binaries not in BINARIES:
            raise self.fail("node.binaries", f'must be "bytes" or "str", got {binaries!r}')
        none = table.get("none", "undefined")
        if none not in NONES:
            raise self.fail("node.none", f'must be "undefined" or "nil", got {none!r}')
        size = table.get("max_message_size")
        if size is not None and (type(size) is not int or not 0 < size < 1 << 32):
            raise self.fail(
                "node.max_message_size", f"must be a positive integer (bytes) under 4 GiB, got {size!r}"
            )
        dashboard = table.get("dashboard")
        if dashboard is not None:
            try:
                parse_host_port(dashboard)
            except ValueError as exc:
                raise self.fail("node.dashboard", str(exc)) from None
        return NodeConfig(
            name,
            cookie,
            tls_verify=str(verify),
            dist_buf_busy_limit=limit,
            hidden=hidden,
            binaries=str(binaries),
            none=str(none),
            max_message_size=size,
            dashboard=dashboard,
            **files,
        )

    def python_path(self, value: object, base: Path) -> None:
        if value is None:
            return
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise self.fail("python_path", f"must be an array of directory names, got {value!r}")
        for entry in reversed(value):
            directory = os.fspath((base / entry).resolve())
            if not os.path.isdir(directory):
                raise self.fail("python_path", f"{entry!r} is not a directory (relative to {base})")
            if directory not in sys.path:
                sys.path.insert(0, directory)

    def top(self, table: Mapping[str, Any], base: Path) -> TreeConfig:
        self.check_keys(table, _TOP_KEYS, "", "the top level")
        self.python_path(table.get("python_path"), base)
        node = self.node(table.get("node"), base)
        tree = self.tree(table, "")
        return TreeConfig(tree.flags, tree.children, tree.name, node, self.source)


def _never_called(*args: Any) -> None:  # pragma: no cover - stands in for a subtree's start
    raise AssertionError("placeholder start of a nested supervisor config")


def _join(path: str, key: str) -> str:
    if not path:
        return key
    if not key:
        return path
    return f"{path}.{key}"


def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> TreeConfig:
    """Load and check a whole tree: a TOML file path, or a dict shaped like the parsed TOML (where
    ``start`` may also be a callable). Raises ``ConfigError`` (file, key path, reason)."""
    if isinstance(source, Mapping):
        return _Loader("<dict>").top(source, Path.cwd())
    path = Path(source)
    loader = _Loader(os.fspath(path))
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        raise loader.fail("", "no such file") from None
    except OSError as exc:
        raise loader.fail("", f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise loader.fail("", f"invalid TOML: {exc}") from None
    return loader.top(table, path.parent)
