"""The ``philipjose`` command line.

Each subsystem that offers a subcommand defines ``add_command(subparsers)`` in its own ``cli`` module,
which adds one parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and
returning an exit status). They are listed in ``_COMMANDS`` below, in the order ``--help`` shows them.

Every parser of the tree is a :class:`CommandParser`, which gives it the shared ``--log-level``
option: it is accepted before the command, after it, or after any nested action, in any letter case
(``--log-level info``). A subcommand's copy leaves the value alone unless it is given, so a later
one wins. ``philipjose`` without a command prints its usage and exits 2, as any other bad command
line does.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from philipjose._version import __version__

__all__ = ["LOG_LEVELS", "CommandParser", "build_parser", "log_level", "main"]

# Modules that define add_command(subparsers); each lands with the issue that builds it.
_COMMANDS: tuple[str, ...] = ("philipjose.epmd.cli", "philipjose.farm.cli", "philipjose.supervisors.cli")

LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR")
"""The values of ``--log-level`` (any letter case)."""

_DEFAULT_LEVEL = "WARNING"


def log_level(text: str) -> str:
    """``--log-level``'s type: the level name in upper case (argparse then checks it is one of
    :data:`LOG_LEVELS`)."""
    return text.strip().upper()


def add_log_level_argument(parser: argparse.ArgumentParser, *, default: Any = argparse.SUPPRESS) -> None:
    """Add ``--log-level`` to ``parser``; by default it sets nothing unless given (see the module doc)."""
    parser.add_argument(
        "--log-level",
        type=log_level,
        default=default,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help="logging threshold: DEBUG, INFO, WARNING or ERROR, any case (default: WARNING; INFO shows "
        "connections, supervisor progress reports and what a farm runs on)",
    )


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that has ``--log-level`` (see the module doc); nested subparsers made
    from it are of this class too (argparse makes them of the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_log_level_argument(self)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="philipjose",
        description="An Erlang-style actor runtime on Trio that speaks the Erlang distribution "
        "protocol, and a farmer for worker nodes.",
    )
    parser.set_defaults(log_level=_DEFAULT_LEVEL)
    parser.add_argument("--version", action="version", version=f"philipjose {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in _COMMANDS:
        importlib.import_module(module_name).add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from philipjose.farm.console import ConsoleHandler  # log lines and the farm's progress bar share stderr

    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[ConsoleHandler()],
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_usage(sys.stderr)
        print("philipjose: error: give a command (philipjose --help lists them)", file=sys.stderr)
        return 2
    return int(func(args) or 0)
