"""The farm's commands: ``philipjose machines`` (register, unregister, list and validate machines),
``philipjose worker`` (a worker node, started by a farmer) and ``philipjose farm run SCRIPT``.

::

    philipjose machines add HOST [--workers N] [--python PATH] [--ssh-opt KEY=VALUE]... [--kind KIND]
                            [--partition P] [--time T] [--account A] [--slurm-option OPT]...
                            [--machines FILE]
    philipjose machines remove HOST... [--machines FILE]
    philipjose machines list [--machines FILE]
    philipjose machines validate [HOST...] [--check module:function] [--timeout S] [--machines FILE]
    philipjose farm run SCRIPT [ARG...] [--workers N | --machines FILE | --slurm N [--partition P]
        [--time T] [--account A] [--slurm-option OPT]...] [--debug] ...

Options may come before or after the action (``--machines`` too, and ``--log-level`` anywhere).
Exit status: 0 on success (for ``validate``: every machine qualified), 1 when a machine is not
qualified or a host to remove is not registered, 2 for a bad command line, a malformed file, or
(``farm run``) an error in the script or its ``main``: one line ``philipjose farm run: error: ...``,
with the traceback too under ``--debug`` or ``--log-level DEBUG``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from philipjose._argtypes import dashboard_address, positive_float, positive_int
from philipjose.cli import add_log_level_argument
from philipjose.dashboard import DashboardUnavailable
from philipjose.dashboard import require as require_dashboard
from philipjose.farm.elastic_cli import (
    RUN_OPTIONS,
    add_ping_action,
    add_run_options,
    add_worker_modes,
    announce,
    cli_error,
    run_options,
    worker_mode,
)
from philipjose.farm.errors import MachinesError
from philipjose.farm.farm import DEFAULT_FARM_NET_TICKTIME as _FARM_TICKTIME
from philipjose.farm.journal import JournalError, clear_journal, compact_journal, summarize_journal
from philipjose.farm.machines import (
    Machine,
    add_machine,
    default_machines_path,
    load_machines,
    remove_machine,
)
from philipjose.farm.slurm import Slurm, SlurmError
from philipjose.farm.validate import DEFAULT_TIMEOUT, Validation, check_spec, validate_machines
from philipjose.node.errors import NodeConfigError
from philipjose.node.tls import add_tls_arguments, tls_from_args

__all__ = ["add_command", "describe_error", "format_validation", "resolve_machines"]

_LOG = logging.getLogger("philipjose.farm.cli")


def add_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``farm``, ``machines`` and ``worker`` commands to the ``philipjose`` command line."""
    _add_farm_command(subparsers)
    _add_machines_command(subparsers)
    _add_worker_command(subparsers)


def _add_machines_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "machines",
        help="register, unregister, list and validate the machines a farm may use",
        description="Manage the machine registry (a TOML file) and validate machines: python and "
        "philipjose versions, cores, memory, and an optional check of your own. 'localhost' runs "
        "without ssh; every other host is reached with ssh (BatchMode: keys, no password prompts).",
    )
    _add_machines_file_option(parser, default=None)
    parser.set_defaults(func=_needs_action(parser))
    actions = parser.add_subparsers(title="actions", metavar="ACTION")

    add = actions.add_parser("add", help="register a machine", description="Register a machine.")
    add.add_argument("host", metavar="HOST", help="'localhost', or what ssh connects to (host, user@host)")
    add.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="worker processes to run there (default: one per core)",
    )
    add.add_argument(
        "--python",
        metavar="PATH",
        default=None,
        help="python to run there (default: this python on localhost, python3 elsewhere)",
    )
    add.add_argument(
        "--ssh-opt",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="ssh_options",
        help="an ssh_config option passed as -o KEY=VALUE, e.g. Port=2222 (repeatable)",
    )
    add.add_argument(
        "--kind",
        choices=["erlang", "server", "ssh", "slurm"],
        default="ssh",
        help="ssh: Python workers started there (default); erlang: HOST is a running Erlang/Elixir node "
        "(name@host) used as an Erlang worker, --workers tasks at once (default: its schedulers); server: "
        "HOST is a worker server's host:port (philipjose worker --listen), --workers slots (default: all); "
        "slurm: HOST names a source of --workers workers (default 1) started through Slurm",
    )
    add.add_argument("--replace", action="store_true", help="replace the machine if it is registered")
    _add_slurm_options(add, "with --kind slurm")
    _add_machines_file_option(add)
    add.set_defaults(func=_add)

    remove = actions.add_parser("remove", help="unregister machines", description="Unregister machines.")
    remove.add_argument("hosts", metavar="HOST", nargs="+")
    _add_machines_file_option(remove)
    remove.set_defaults(func=_remove)

    listing = actions.add_parser("list", help="list the registered machines", description="List machines.")
    _add_machines_file_option(listing)
    listing.set_defaults(func=_list)

    validate = actions.add_parser(
        "validate",
        help="probe machines and say whether each is qualified",
        description="Run a probe with each machine's python (over ssh except for localhost) and report "
        "whether it is qualified: python >= 3.11, philipjose importable with this version, and the "
        "--check passing. Hosts not registered are probed with default settings.",
    )
    validate.add_argument("hosts", metavar="HOST", nargs="*", help="machines to validate (default: all)")
    validate.add_argument(
        "--check",
        metavar="MODULE:FUNCTION",
        default=None,
        help="a function importable there, called with no arguments: None/true passes, a string is "
        "the reason for refusing, false or an exception refuses",
    )
    validate.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds each machine has to answer (default: {DEFAULT_TIMEOUT:g})",
    )
    _add_machines_file_option(validate)
    validate.set_defaults(func=_validate)


def _add_machines_file_option(
    parser: argparse.ArgumentParser, *, default: object = argparse.SUPPRESS
) -> None:
    """``--machines FILE``, on ``machines`` and on each of its actions (an action's copy sets nothing
    unless given, so ``machines --machines F list`` and ``machines list --machines F`` agree)."""
    parser.add_argument(
        "--machines",
        metavar="FILE",
        type=Path,
        default=default,
        help=f"the machines file (default: {default_machines_path()})",
    )


def _needs_action(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A ``func`` for a command given without its action: usage and one error line, exit 2."""

    def fail(_args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: give an action ({parser.prog} --help lists them)", file=sys.stderr)
        return 2

    return fail


def _path(args: argparse.Namespace) -> Path:
    return args.machines if args.machines is not None else default_machines_path()


def _fail(message: str, status: int = 2) -> int:
    print(f"philipjose machines: error: {message}", file=sys.stderr)
    return status


def _add(args: argparse.Namespace) -> int:
    path = _path(args)
    try:
        machine: Machine | Slurm
        if args.kind == "slurm":
            if args.ssh_options:
                raise MachinesError("--ssh-opt does not go with --kind slurm")
            machine = _slurm_source(args, args.workers or 1, python=args.python, name=args.host)
        else:
            _no_slurm_options(args)
            machine = Machine(args.host, args.workers, args.python, tuple(args.ssh_options), kind=args.kind)
        add_machine(path, machine, replace=args.replace)
    except MachinesError as exc:
        return _fail(str(exc))
    print(f"registered {machine.host} in {path}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    path = _path(args)
    status = 0
    for host in args.hosts:
        try:
            removed = remove_machine(path, host)
        except MachinesError as exc:
            return _fail(str(exc))
        if removed is None:
            status = _fail(f"{host} is not registered in {path}", 1)
        else:
            print(f"removed {host} from {path}")
    return status


def _describe(machine: Machine | Slurm) -> str:
    if isinstance(machine, Slurm):
        table = machine.to_table()
        del table["kind"]
        shown = {k: " ".join(v) if isinstance(v, list) else v for k, v in table.items()}
        return "  ".join(["(slurm)", *(f"{key}={value}" for key, value in shown.items())])
    if machine.kind == "erlang":
        return f"erlang node  workers={machine.workers or 'its schedulers_online'}"
    if machine.kind == "server":
        return f"worker server  slots={machine.workers or 'all it has'}"
    if machine.workers is not None:
        workers = str(machine.workers)
    else:  # what the farm starts there (see Machine.workers)
        workers = f"one per core ({os.cpu_count() or 1})" if machine.is_local else "1"
    fields = [f"workers={workers}", f"python={machine.python_command()}"]
    if machine.is_local:
        fields.append("(local, no ssh)")
    elif machine.ssh_options:
        fields.append("ssh: " + " ".join(machine.ssh_options))
    return "  ".join(fields)


def _list(args: argparse.Namespace) -> int:
    path = _path(args)
    try:
        machines = load_machines(path)
    except MachinesError as exc:
        return _fail(str(exc))
    if not machines:
        print(f"no machines registered in {path}")
        return 0
    width = max(len(host) for host in machines)
    for machine in machines.values():
        print(f"{machine.host:<{width}}  {_describe(machine)}")
    return 0


def _gib(size: int | None) -> str:
    return "?" if size is None else f"{size / 2**30:.1f} GiB"


def format_validation(result: Validation, width: int = 0) -> str:
    """One line of ``machines validate`` output for ``result``, host padded to ``width``."""
    verdict = "qualified" if result.qualified else "NOT qualified"
    facts = []
    if result.python_version is not None:
        facts.append("python " + ".".join(map(str, result.python_version)))
    if result.philipjose_version is not None:
        facts.append(f"philipjose {result.philipjose_version}")
    if result.cores is not None:
        facts.append(f"cores {result.cores}")
    if result.memory is not None:
        facts.append(f"memory {_gib(result.memory)}")
    line = f"{result.host:<{width}}  {verdict:<13}  {'  '.join(facts)}".rstrip()
    if not result.qualified:
        line += f"\n{'':<{width}}  reason: {result.reason}"
    return line


def _validate(args: argparse.Namespace) -> int:
    path = _path(args)
    try:
        registered = load_machines(path)
        if args.check is not None:
            check_spec(args.check)
        if args.hosts:
            machines = [registered.get(host) or Machine(host) for host in args.hosts]
        else:
            machines = list(registered.values())
    except MachinesError as exc:
        return _fail(str(exc))
    nodes = [m.host for m in machines if isinstance(m, Machine) and m.kind == "erlang"]
    if nodes:  # reached by distribution, not ssh: the farm checks them when it connects
        print(f"note: not validated (Erlang nodes, checked when a farm connects): {', '.join(nodes)}")
    servers = [m.host for m in machines if isinstance(m, Machine) and m.kind == "server"]
    if servers:
        print(f"note: not validated (worker servers: philipjose farm ping ADDRESS): {', '.join(servers)}")
    if nodes or servers:
        nodes += servers
        machines = [m for m in machines if m.host not in nodes]
    if not machines and not nodes:
        return _fail(f"no machines registered in {path}; name hosts to validate, or add some", 1)
    if not machines:
        return 0
    unregistered = [m.host for m in machines if m.host not in registered]
    if unregistered:
        print(f"note: not registered, probed with default settings: {', '.join(unregistered)}")
    results = trio.run(lambda: validate_machines(machines, check=args.check, timeout=args.timeout))
    width = max(len(r.host) for r in results)
    for result in results:
        print(format_validation(result, width))
    return 0 if all(r.qualified for r in results) else 1


# -- philipjose worker ---------------------------------------------------------------------------------


def _add_worker_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a farm worker: started by a farmer, joining a farm (--join) or serving farms (--listen)",
        description="A worker node that connects back to its farmer and runs tasks. The farm's cookie is "
        "read from the first line of stdin (or --cookie-file, mode 0600), never from the command line; "
        "the worker exits when stdin ends, when the farmer's node goes down, or when told to stop. "
        "With --join it joins a running farm on its own (SIGTERM makes it leave once its task is done); "
        "with --listen it is a long-lived server that starts workers for the farms that connect to it.",
    )
    parser.add_argument("--farmer", metavar="NODE", help="the farmer's node name (started by a farmer)")
    parser.add_argument("--farmer-port", type=positive_int, metavar="PORT", help="the farmer's port")
    parser.add_argument("--farm", metavar="NAME", help="the farmer process's registered name")
    parser.add_argument("--name", metavar="NODE", help="this worker's node name (--join: j<random>@<host>)")
    parser.add_argument(
        "--listen-host", default="127.0.0.1", help="where this node listens (default 127.0.0.1)"
    )
    parser.add_argument("--cookie-file", type=Path, default=None, help="read the cookie from this 0600 file")
    parser.add_argument(
        "--net-ticktime",
        type=positive_float,
        default=None,
        metavar="S",
        help="the node's net_ticktime (the farmer passes its own; default 60 s, as OTP)",
    )
    parser.add_argument(
        "--max-message-size",
        type=positive_int,
        default=None,
        metavar="BYTES",
        help="the farm's largest pickled task or result (default 1 GiB); the node accepts frames of "
        "that plus 1 MiB",
    )
    parser.add_argument(
        "--lane",
        type=_lane_fds,
        default=None,
        metavar="R,W",
        help="set by a farmer that starts the worker on its own host: the inherited pipes its tasks "
        "come through (R) and their outcomes go back through (W)",
    )
    add_tls_arguments(parser)
    add_worker_modes(parser)
    parser.set_defaults(func=_worker)


def _lane_fds(text: str) -> tuple[int, int]:
    from philipjose.farm.lane import parse_lane_fds

    try:
        return parse_lane_fds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _worker(args: argparse.Namespace) -> int:
    import philipjose as pj
    from philipjose.farm.lane import LaneError
    from philipjose.farm.launch import LaunchError, read_secret, read_secret_file
    from philipjose.farm.sizes import DEFAULT_MAX_MESSAGE_SIZE, check_max_message_size, frame_limit
    from philipjose.farm.worker import FarmerUnreachable, serve

    if args.join is None and args.listen is None and args.stop is None:
        missing = [
            f"--{k.replace('_', '-')}"
            for k in ("farmer", "farmer_port", "farm", "name")
            if not getattr(args, k)
        ]
        if missing:
            return cli_error("worker", f"{', '.join(missing)} needed (or --join, --listen, --stop)")
    try:
        tls = tls_from_args(args)
    except NodeConfigError as exc:
        return cli_error("worker", str(exc))
    size = DEFAULT_MAX_MESSAGE_SIZE if args.max_message_size is None else args.max_message_size
    try:
        check_max_message_size(size)
    except ValueError as exc:
        return cli_error("worker", str(exc))
    args.max_message_size_value = size
    node_options: dict[str, Any] = {
        "tls": tls,
        "max_frame_size": frame_limit(size),
        "max_message_size": frame_limit(size),
    }
    if args.net_ticktime is not None:
        node_options["net_ticktime"] = args.net_ticktime
    status = worker_mode(args, node_options)
    if status is not None:
        return status
    try:
        secret = read_secret_file(args.cookie_file) if args.cookie_file is not None else read_secret()
    except (LaunchError, OSError) as exc:
        print(f"philipjose worker: no usable secret: {exc}", file=sys.stderr)
        return 2
    options = {} if args.net_ticktime is None else {"net_ticktime": args.net_ticktime}
    try:
        pj.run(
            functools.partial(
                serve, lifeline=args.cookie_file is None, max_message_size=size, lane=args.lane
            ),
            args.farmer,
            args.farm,
            node=args.name,
            cookie=secret,
            epmd=False,
            peer_ports={args.farmer: args.farmer_port},
            listen_host=args.listen_host,
            tls=tls,
            max_frame_size=frame_limit(size),
            max_message_size=frame_limit(size),
            hidden=True,
            **options,
        )
    except (FarmerUnreachable, LaneError) as exc:
        print(f"philipjose worker: {exc}", file=sys.stderr)
        return 1
    return 0


# -- philipjose farm run -------------------------------------------------------------------------------


def _add_farm_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "farm",
        help="run a computation on a farm of workers",
        description="Run a script on a farm. The script defines `async def main(farm)` (or `def main(farm)` "
        "returning an awaitable); it gets a ready philipjose.farm.Farm. Its functions, and those of "
        "modules beside it, are shipped to the workers by value, so none of it need be installed there.",
    )
    parser.set_defaults(func=_needs_action(parser))
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run SCRIPT's main(farm) on a farm",
        description="Run a script's main(farm), with the script's folder first on sys.path (as "
        "`python SCRIPT` has it). Options may come before or after SCRIPT; other arguments after "
        "SCRIPT are the script's (its sys.argv[1:]). Without --workers or --machines the farm runs on "
        f"the registered machines ({default_machines_path()}) when that file exists, else on local "
        "workers, one per core (--log-level INFO says which). An error in the script, its main or the "
        "machines file is one line (exit status 2; --debug shows the traceback). Ctrl-C or SIGTERM "
        "stops the script and the workers and prints 'interrupted: N of M tasks done' (exit status "
        "130, or 143).",
    )
    _add_farm_run_options(run)
    run.add_argument("script", metavar="SCRIPT", type=Path)
    run.add_argument("script_args", metavar="ARG", nargs=argparse.REMAINDER, help="arguments for the script")
    run.set_defaults(func=_farm_run)
    add_ping_action(actions)
    journal = actions.add_parser(
        "journal",
        help="show what a farm journal holds; compact or clear it",
        description="Show what the journal at PATH (written by `farm run --journal PATH` or "
        "Farm(journal=PATH)) holds: tasks done and failed, by function, and its size. --compact "
        "rewrites it smaller; --clear forgets every result and the script it was for.",
    )
    journal.add_argument("path", metavar="PATH", type=Path)
    what = journal.add_mutually_exclusive_group()
    what.add_argument("--compact", action="store_true", help="checkpoint and VACUUM it")
    what.add_argument("--clear", action="store_true", help="remove every result (and the script's mark)")
    journal.set_defaults(func=_farm_journal)


_RUN_OPTIONS = (
    "workers",
    "machines",
    "progress",
    "net_ticktime",
    "debug",
    "log_level",
    "tls_certfile",
    "tls_keyfile",
    "tls_cafile",
    "tls_verify",
    "speculation",
    "journal",
    "rerun_failed",
    "dashboard",
    "slurm",
    "partition",
    "time",
    "account",
    "slurm_options",
    *RUN_OPTIONS,
)


def _add_farm_run_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=positive_int, default=None, help="local workers (default: one per core)"
    )
    where.add_argument(
        "--machines",
        metavar="FILE",
        type=Path,
        default=None,
        help=f"run on the machines in FILE (default: {default_machines_path()} when it exists)",
    )
    where.add_argument(
        "--slurm",
        metavar="N",
        type=positive_int,
        default=None,
        help="run N workers started through Slurm: in the job the command runs in (SLURM_JOB_ID), "
        "else in a job the farm asks for and cancels at the end (see docs/farm.md)",
    )
    _add_slurm_options(parser)
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: only when stderr is a terminal)",
    )
    parser.add_argument(
        "--net-ticktime",
        type=positive_float,
        default=None,
        metavar="S",
        help="seconds after which a silent (stopped, cut off) worker is declared down and its tasks "
        f"run again (default: {_FARM_TICKTIME:g})",
    )
    parser.add_argument(
        "--speculation",
        action="store_true",
        default=None,
        help="give straggling tasks a duplicate on another worker; the first to finish wins "
        "(Spark's rule: past 1.5x the median runtime once 75%% of the tasks are done)",
    )
    parser.add_argument(
        "--journal",
        metavar="PATH",
        type=Path,
        default=None,
        help="record every result in the SQLite journal PATH; run again with the same journal, the "
        "recorded tasks are not run again (a journal of another script is refused)",
    )
    parser.add_argument(
        "--rerun-failed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --journal: run recorded failures again (default), or replay them (--no-rerun-failed)",
    )
    parser.add_argument(
        "--dashboard",
        metavar="[HOST:]PORT",
        type=dashboard_address,
        default=None,
        help="serve a live web page of the farm at PORT (0: any free port) on 127.0.0.1, or on HOST; "
        "its URL is printed on stderr (needs pip install 'philipjose[dashboard]')",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=None,
        help="on an error, show its traceback (as --log-level DEBUG does)",
    )
    add_tls_arguments(parser)
    add_run_options(parser)


def _add_slurm_options(parser: argparse.ArgumentParser, title: str = "with --slurm") -> None:
    """The job's options that go with ``--slurm`` (``farm run``) or ``--kind slurm`` (``machines add``)."""
    slurm = parser.add_argument_group(f"{title} (the job's salloc options)")
    slurm.add_argument("--partition", default=None, help="the Slurm partition (default: the cluster's)")
    slurm.add_argument("--time", default=None, help='the job\'s time limit ("30", "1:00:00", "2-12")')
    slurm.add_argument("--account", default=None, help="the Slurm account to charge")
    slurm.add_argument(
        "--slurm-option",
        dest="slurm_options",
        metavar="OPT",
        action="append",
        default=None,
        help='another salloc option, as one word ("--qos=short"); repeat for more',
    )


def _slurm_source(args: argparse.Namespace, workers: int, **more: Any) -> Slurm:
    """``--slurm`` and its options as a :class:`Slurm` (MachinesError for a bad value)."""
    return Slurm(
        workers=workers,
        partition=args.partition,
        time=args.time,
        account=args.account,
        extra=tuple(args.slurm_options or ()),
        **more,
    )


def _no_slurm_options(args: argparse.Namespace) -> None:
    given = [f"--{k.replace('_', '-')}" for k in ("partition", "time", "account") if getattr(args, k)]
    if args.slurm_options:
        given.append("--slurm-option")
    if given:
        raise MachinesError(f"{', '.join(given)}: Slurm options, for a Slurm source")


def resolve_machines(
    workers: int | None, machines: Path | None, registry: Path
) -> tuple[int | None, list[Machine | Slurm] | None, str]:
    """Where ``farm run`` runs: ``(workers, machines, what to say at INFO)``.

    ``--workers N``: N local workers. ``--machines FILE``: the machines in FILE, which must exist and
    name at least one. Neither: the machines in ``registry`` (the file ``philipjose machines add``
    writes) when it exists and names some, else local workers, one per core. Raises
    :class:`MachinesError` for a missing, malformed or empty ``--machines`` file (or a malformed
    registry).
    """
    if workers is not None:
        return workers, None, f"running on {workers} local workers (--workers)"
    path = registry if machines is None else machines
    if machines is None and not path.exists():
        return (
            None,
            None,
            f"running on local workers, one per core (no machines registered: {path} does not exist)",
        )
    if not path.exists():
        raise MachinesError(f"{path}: no such machines file")
    if path.is_dir():
        raise MachinesError(f"{path}: is a folder, not a machines file")
    found = load_machines(path)
    if not found:
        if machines is None:
            return None, None, f"running on local workers, one per core (no machines registered in {path})"
        raise MachinesError(
            f"{path}: no machines registered in it (philipjose machines add HOST --machines {path})"
        )
    hosts = ", ".join(found)
    return None, list(found.values()), f"running on the machines registered in {path}: {hosts}"


def _user_frame(tb: traceback.StackSummary, folder: Path) -> traceback.FrameSummary | None:
    """The innermost frame of code in ``folder`` (the script's own, or a module beside it)."""
    for frame in reversed(tb):
        try:
            if Path(frame.filename).resolve().is_relative_to(folder):
                return frame
        except (OSError, ValueError):
            continue
    return None


def _leaf(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups (Trio's nurseries wrap)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _shown(filename: str) -> str:
    """A file name as the user would type it: relative to the current folder when inside it."""
    try:
        path = Path(filename).resolve()
        return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else filename
    except (OSError, ValueError):
        return filename


def describe_error(exc: BaseException, script: Path) -> str:
    """One line saying what went wrong running ``script``: the exception's type and message, and
    where in the user's code (the script or a module beside it) it was raised."""
    exc = _leaf(exc)
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    plain = (MachinesError, NodeConfigError, JournalError, DashboardUnavailable, SlurmError)  # says it all
    if isinstance(exc, plain) or type(exc).__name__ == "FarmError":
        return first_line or type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_shown(exc.filename)}, line {exc.lineno}: {type(exc).__name__}: {exc.msg}"
    text = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    frame = _user_frame(traceback.extract_tb(exc.__traceback__), script.resolve().parent)
    if frame is not None:
        text += f" ({_shown(frame.filename)}, line {frame.lineno}, in {frame.name})"
    return text


def _farm_journal(args: argparse.Namespace) -> int:
    try:
        if args.clear:
            print(f"cleared {args.path}: {clear_journal(args.path)} results removed")
        elif args.compact:
            before, after = compact_journal(args.path)
            print(f"compacted {args.path}: {before} -> {after} bytes")
        else:
            for line in summarize_journal(args.path).lines():
                print(line)
    except JournalError as exc:
        print(f"philipjose farm journal: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _farm_run(args: argparse.Namespace) -> int:
    from philipjose.farm.script import run_script

    # options given after SCRIPT: take them out of the script's arguments
    late = argparse.ArgumentParser(prog="philipjose farm run", add_help=False, allow_abbrev=False)
    _add_farm_run_options(late)
    add_log_level_argument(late)
    extra, script_args = late.parse_known_args(args.script_args)
    for key in _RUN_OPTIONS:
        if getattr(extra, key, None) is not None:
            setattr(args, key, getattr(extra, key))
    logging.getLogger().setLevel(args.log_level)
    debug = bool(args.debug) or args.log_level == "DEBUG"
    args.script_args = script_args

    def fail(exc: BaseException) -> int:
        if debug:
            traceback.print_exception(_leaf(exc), file=sys.stderr)
        print(f"philipjose farm run: error: {describe_error(exc, args.script)}", file=sys.stderr)
        return 2

    if sum(x is not None for x in (args.workers, args.machines, args.slurm)) > 1:
        print("philipjose farm run: error: give one of --workers, --machines, --slurm", file=sys.stderr)
        return 2
    workers: int | None
    machines: list[Machine | Slurm] | None
    try:
        tls = tls_from_args(args)
        farm_options = run_options(args)
        elastic = bool(args.accept_workers or args.server) and args.workers is None and args.machines is None
        if args.slurm is not None:
            workers, machines = None, [_slurm_source(args, args.slurm)]
            where = f"running {args.slurm} workers through Slurm (--slurm)"
        elif elastic:  # only the workers that join, or come from the servers
            workers, machines, where = (
                (0 if args.accept_workers else None),
                None,
                "running on joining workers",
            )
            _no_slurm_options(args)
        else:
            workers, machines, where = resolve_machines(args.workers, args.machines, default_machines_path())
            _no_slurm_options(args)
        if args.dashboard is not None:
            require_dashboard()
    except (NodeConfigError, MachinesError, ImportError) as exc:
        return fail(exc)
    except ValueError as exc:
        print(f"philipjose farm run: error: {exc}", file=sys.stderr)
        return 2
    _LOG.info("%s", where)
    try:
        return run_script(
            args.script,
            args.script_args,
            workers=workers,
            machines=machines,
            progress=args.progress,
            tls=tls,
            net_ticktime=_FARM_TICKTIME if args.net_ticktime is None else args.net_ticktime,
            speculation=bool(args.speculation),
            journal=args.journal,
            rerun_failed=args.rerun_failed is not False,
            dashboard=args.dashboard,
            farm_options=farm_options,
            on_start=functools.partial(announce, cookie_file=args.cookie_file)
            if args.accept_workers
            else None,
        )
    except BaseException as exc:  # the script's or its main's error: one line (the traceback with --debug)
        leaf = _leaf(exc)
        if not isinstance(leaf, Exception):  # sys.exit(N) in main exits N, as python does; Ctrl-C
            raise leaf from None
        return fail(exc)
