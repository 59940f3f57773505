"""argparse value types shared by the command lines (``philipjose epmd``, ``farm``, ``worker``, ...).

Each raises ``argparse.ArgumentTypeError``, which argparse turns into its one-line usage error and
exit status 2.
"""

from __future__ import annotations

import argparse

from philipjose._hostport import parse_host_port

__all__ = ["dashboard_address", "positive_float", "positive_int"]


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def positive_float(text: str) -> float:
    """A number greater than 0 (seconds, mostly)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def dashboard_address(text: str) -> str:
    """``[HOST:]PORT`` for a dashboard (checked; returned as given)."""
    try:
        parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
