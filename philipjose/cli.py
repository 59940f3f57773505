"""The ``philipjose`` command line.

Each subsystem that offers a subcommand defines ``add_command(subparsers)`` in its own ``cli`` module,
which adds one parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and
returning an exit status). They are listed in ``_COMMANDS`` below, in the order ``--help`` shows them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence

from philipjose._version import __version__

# Modules that define add_command(subparsers); each lands with the issue that builds it.
_COMMANDS: tuple[str, ...] = ("philipjose.epmd.cli", "philipjose.farm.cli", "philipjose.supervisors.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="philipjose",
        description="An Erlang-style actor runtime on Trio that speaks the Erlang distribution "
        "protocol, and a farmer for worker nodes.",
    )
    parser.add_argument("--version", action="version", version=f"philipjose {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold (default: WARNING; INFO shows connections and supervisor progress reports)",
    )
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
        parser.print_help()
        return 0
    return int(func(args) or 0)
