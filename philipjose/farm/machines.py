"""The machine registry: which computers the farm may use, kept in a TOML file.

PHILIP-JOSE's "register and unregister machines". The file (default
``$XDG_CONFIG_HOME/philipjose/machines.toml``, else ``~/.config/philipjose/machines.toml``; the CLI's
``--machines FILE`` overrides) looks like::

    version = 1

    [machines.localhost]
    workers = 2

    [machines."build-7.example.org"]
    workers = 8
    python = "/opt/python3.12/bin/python3"
    ssh_options = ["Port=2222", "User=farm", "IdentityFile=~/.ssh/farm_ed25519"]

    [machines."calc@build-8"]
    kind = "erlang"          # an Erlang/Elixir node already running: an Erlang worker
    workers = 16             # tasks it runs at once (default: its schedulers_online)

    [machines."build-9:9000"]
    kind = "server"          # a `philipjose worker --listen build-9:9000` server
    workers = 4              # slots to ask it for (default: all it has)

Each ``[machines.HOST]`` table is one :class:`Machine`; every key is optional. ``kind`` says how the
farm gets workers there (:data:`KINDS`: which keys each kind takes): ``"ssh"`` (the default) starts
Python workers, ``"erlang"`` uses the node named by HOST as an Erlang worker, ``"server"`` asks the
worker server at HOST (``host:port``; :mod:`philipjose.farm.server`) for workers. Reading checks
everything and raises :class:`~philipjose.farm.errors.MachinesError` naming the file, the key and the
problem; unknown keys are errors (a typo must not be silently ignored). Writing goes through a
temporary file and ``os.replace``, so a reader never sees half a file.

``localhost`` (that exact name) is run without ssh, with a plain subprocess; every other host,
``127.0.0.1`` included, is reached with ``ssh``. A table with ``kind = "slurm"`` is a source of
workers started through Slurm instead (:class:`philipjose.farm.slurm.Slurm`; its keys are
``workers``, ``partition``, ``time``, ``account``, ``cpus_per_worker``, ``extra``, ``step_options``,
``python``)::

    [machines.cluster]
    kind = "slurm"
    workers = 64
    partition = "compute"
    time = "2:00:00"
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from philipjose.farm import _toml
from philipjose.farm.errors import MachinesError

if TYPE_CHECKING:
    from philipjose.farm.slurm import Slurm

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "LOCALHOST",
    "MAX_WORKERS",
    "Machine",
    "add_machine",
    "default_machines_path",
    "dump_machines",
    "load_machines",
    "parse_machines",
    "remove_machine",
    "save_machines",
]

FORMAT_VERSION = 1
"""The ``version`` written at the top of a machines file; a file with another version is refused."""

LOCALHOST = "localhost"
"""The one host name that is run as a local subprocess, without ssh."""

MAX_WORKERS = 4096
"""The largest ``workers`` a machine may declare."""

KINDS: dict[str, tuple[str, ...]] = {
    "ssh": ("workers", "python", "ssh_options"),
    "erlang": ("workers",),
    "slurm": (
        "workers",
        "partition",
        "time",
        "account",
        "cpus_per_worker",
        "extra",
        "step_options",
        "python",
    ),
    "server": ("workers",),
}
"""Each machine ``kind`` and the keys (besides ``kind``) its table may have."""

_SERVER_ADDRESS = re.compile(r"(\[[^\]]+\]|[^:\s\[\]]+):[0-9]{1,5}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SSH_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9]*=\S.*", re.DOTALL)
_FILE_HEADER = (
    "philipjose machines: the computers a farm may use.\n"
    "Written by `philipjose machines add/remove`; see docs/farm.md for the format."
)


def _host_problem(host: object) -> str | None:
    if not isinstance(host, str):
        return f"must be a string, not {type(host).__name__}"
    if not host:
        return "must not be empty"
    if len(host) > 255:
        return "must be at most 255 characters"
    if host.startswith("-"):
        return f"must not start with '-' (it would read as an ssh option): {host!r}"
    if _CONTROL.search(host) or any(c.isspace() for c in host):
        return f"must not contain spaces or control characters: {host!r}"
    return None


def _kind_problem(kind: object, host: object) -> str | None:
    if kind not in KINDS:
        return f"must be one of {', '.join(map(repr, KINDS))}, not {kind!r}"
    if kind == "erlang" and (not isinstance(host, str) or host.count("@") != 1 or host[0] == "@"):
        return f"'erlang' needs the host to be a node name (name@host), not {host!r}"
    if kind == "server" and (not isinstance(host, str) or not _SERVER_ADDRESS.fullmatch(host)):
        return f"'server' needs the host to be the server's address (host:port), not {host!r}"
    return None


def _workers_problem(workers: object) -> str | None:
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        return f"must be an integer from 1 to {MAX_WORKERS}, not {workers!r}"
    return None


def _python_problem(python: object) -> str | None:
    if python is None:
        return None
    if not isinstance(python, str):
        return f"must be a string, not {type(python).__name__}"
    if not python.strip():
        return "must not be empty"
    if _CONTROL.search(python):
        return f"must not contain control characters: {python!r}"
    return None


def _ssh_options_problem(options: object) -> str | None:
    if not isinstance(options, (list, tuple)):
        return f'must be a list of "Key=Value" strings, not {type(options).__name__}'
    for index, option in enumerate(options):
        if not isinstance(option, str):
            return f"[{index}] must be a string, not {type(option).__name__}"
        if _CONTROL.search(option) or not _SSH_OPTION.fullmatch(option):
            return f'[{index}] must look like "Key=Value" (an ssh_config option), not {option!r}'
    return None


@dataclass(frozen=True, slots=True)
class Machine:
    """One registered computer.

    - ``host``: what ``ssh`` connects to (``name``, ``user@name``, an address), or ``localhost`` for a
      local subprocess. No spaces, no leading ``-``.
    - ``workers``: how many worker processes to start there, from 1 to :data:`MAX_WORKERS`; ``None``
      (the default) means one per core on ``localhost`` and 1 on another host (validation reports the
      cores of a remote machine).
    - ``python``: the interpreter to run there; ``None`` means the farmer's own ``sys.executable`` on
      ``localhost`` and ``python3`` (found on the remote ``PATH``) elsewhere. A leading ``~/`` is
      expanded by the remote shell.
    - ``ssh_options``: ``ssh_config`` options as ``"Key=Value"`` strings, each passed as ``-o
      Key=Value`` (``Port=2222``, ``User=farm``, ``IdentityFile=...``). Ignored for ``localhost``.
    - ``kind``: ``"ssh"`` (the default: Python workers started there) or ``"erlang"``: ``host`` is an
      Erlang/Elixir node already running (``name@host``), used as an Erlang worker; ``workers`` is
      then how many tasks it runs at once (default: its ``erlang:system_info(schedulers_online)``).

    Constructing a bad record raises :class:`MachinesError`.
    """

    host: str
    workers: int | None = None
    python: str | None = None
    ssh_options: tuple[str, ...] = ()
    kind: str = "ssh"

    def __post_init__(self) -> None:
        options: object = self.ssh_options
        if isinstance(options, list):  # accept a list, store a tuple (hashable, immutable)
            object.__setattr__(self, "ssh_options", tuple(options))
        for key, problem in (
            ("host", _host_problem(self.host)),
            ("workers", _workers_problem(self.workers)),
            ("python", _python_problem(self.python)),
            ("ssh_options", _ssh_options_problem(self.ssh_options)),
            ("kind", _kind_problem(self.kind, self.host)),
        ):
            if problem is not None:
                raise MachinesError(f"machine {key} {problem}")
        if self.kind == "slurm":
            raise MachinesError("machine kind 'slurm' is a farm.Slurm(...), not a Machine")
        for key in ("python", "ssh_options"):
            if getattr(self, key) and key not in KINDS[self.kind]:
                raise MachinesError(f"machine {key} does not apply to a machine of kind {self.kind!r}")

    @property
    def is_local(self) -> bool:
        """True for ``localhost``: started as a subprocess, no ssh."""
        return self.host == LOCALHOST

    def python_command(self) -> str:
        """The interpreter to run on this machine (see ``python`` above for the default)."""
        if self.python is not None:
            return self.python
        return sys.executable if self.is_local else "python3"

    def remote_python(self) -> str:
        """The interpreter as a word for the remote shell: quoted, with a leading ``~/`` left to expand."""
        python = self.python_command()
        if python.startswith("~/"):
            return "~/" + shlex.quote(python[2:])
        return shlex.quote(python)

    def ssh_command(self, remote_command: str, *, ssh: str = "ssh") -> list[str]:
        """The argv that runs ``remote_command`` (shell text) on this host with ``ssh``.

        The machine's own options come first, so they win over the defaults added after them
        (``BatchMode=yes``: never prompt for a password, fail instead).
        """
        argv = [ssh]
        for option in self.ssh_options:
            argv += ["-o", option]
        argv += ["-o", "BatchMode=yes", "--", self.host, remote_command]
        return argv

    def to_table(self) -> dict[str, object]:
        """This machine's keys as they are written under ``[machines.HOST]`` (defaults left out)."""
        table: dict[str, object] = {}
        if self.kind != "ssh":
            table["kind"] = self.kind
        if self.workers is not None:
            table["workers"] = self.workers
        if self.python is not None:
            table["python"] = self.python
        if self.ssh_options:
            table["ssh_options"] = list(self.ssh_options)
        return table


def default_machines_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/philipjose/machines.toml``, or ``~/.config/philipjose/machines.toml``.

    A relative or empty ``XDG_CONFIG_HOME`` is ignored, as the XDG base directory spec says.
    """
    env = os.environ if environ is None else environ
    config_home = env.get("XDG_CONFIG_HOME", "")
    if not config_home or not os.path.isabs(config_home):
        home = env.get("HOME") or os.path.expanduser("~")
        config_home = os.path.join(home, ".config")
    return Path(config_home) / "philipjose" / "machines.toml"


def _key_path(*parts: str) -> str:
    return ".".join(_toml.format_key(p) for p in parts)


def parse_machines(text: str, source: str = "<machines>") -> dict[str, Machine | Slurm]:
    """The machines described by TOML ``text``, by host, in file order.

    ``source`` names the file in error messages. Raises :class:`MachinesError` for invalid TOML, a
    missing or unknown ``version``, unknown keys, or a value of the wrong type or range.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MachinesError(f"{source}: not valid TOML: {exc}") from exc

    def fail(key: str, problem: str) -> MachinesError:
        return MachinesError(f"{source}: {key}: {problem}")

    for key in document:
        if key not in ("version", "machines"):
            raise fail(_key_path(key), "unknown key (expected 'version' and [machines.HOST] tables)")
    version = document.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise fail("version", f"this philipjose reads version {FORMAT_VERSION}, not {version!r}")
    tables = document.get("machines", {})
    if not isinstance(tables, dict):
        raise fail("machines", "must be a table of [machines.HOST] tables")

    machines: dict[str, Machine | Slurm] = {}
    for host, table in tables.items():
        where = _key_path("machines", host)
        problem = _host_problem(host)
        if problem is not None:
            raise fail(where, f"host name {problem}")
        if not isinstance(table, dict):
            raise fail(where, f"must be a table, not {type(table).__name__}")
        kind = table.get("kind", "ssh")
        if (problem := _kind_problem(kind, host)) is not None:
            raise fail(_key_path("machines", host, "kind"), problem)
        for key in table:
            if key != "kind" and key not in KINDS[kind]:
                raise fail(
                    _key_path("machines", host, key),
                    f"unknown key (expected {', '.join(KINDS[kind])}, kind; for kind {kind!r})",
                )
        if kind == "slurm":  # workers started through Slurm: philipjose.farm.slurm
            from philipjose.farm.slurm import slurm_from_table

            machines[host] = slurm_from_table(host, table, source)
            continue
        checks = (
            ("workers", _workers_problem),
            ("python", _python_problem),
            ("ssh_options", _ssh_options_problem),
        )
        for key, check in checks:
            if key in table and (problem := check(table[key])) is not None:
                raise fail(_key_path("machines", host, key), problem)
        machines[host] = Machine(
            host=host,
            workers=table.get("workers"),
            python=table.get("python"),
            ssh_options=tuple(table.get("ssh_options", ())),
            kind=kind,
        )
    return machines


def dump_machines(machines: Iterable[Machine | Slurm]) -> str:
    """The TOML text of a machines file holding ``machines`` (in order; a later duplicate host wins)."""
    tables: dict[str, object] = {m.host: m.to_table() for m in machines}
    return _toml.dumps({"version": FORMAT_VERSION, "machines": tables}, header=_FILE_HEADER)


def load_machines(path: str | os.PathLike[str]) -> dict[str, Machine | Slurm]:
    """The machines registered in the file at ``path``, by host; a missing file is an empty registry."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise MachinesError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MachinesError(f"{file}: not UTF-8 text: {exc}") from exc
    return parse_machines(text, str(file))


def save_machines(path: str | os.PathLike[str], machines: Iterable[Machine | Slurm]) -> None:
    """Write ``machines`` to ``path`` atomically (temporary file + ``os.replace``), creating its folder."""
    file = Path(path)
    text = dump_machines(machines)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, file)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def add_machine(path: str | os.PathLike[str], machine: Machine | Slurm, *, replace: bool = False) -> None:
    """Register ``machine`` in the file at ``path``.

    Raises :class:`MachinesError` when the host is already registered, unless ``replace`` is true.
    """
    machines = load_machines(path)
    if machine.host in machines and not replace:
        raise MachinesError(f"{path}: {machine.host} is already registered (replace it to change it)")
    machines[machine.host] = machine
    save_machines(path, machines.values())


def remove_machine(path: str | os.PathLike[str], host: str) -> Machine | Slurm | None:
    """Unregister ``host`` from the file at ``path``; returns its record, or None if it was not there."""
    machines = load_machines(path)
    removed = machines.pop(host, None)
    if removed is not None:
        save_machines(path, machines.values())
    return removed
