"""Errors raised by :mod:`philipjose.supervisors`.

The caller's fault and the running system's outcome are different exceptions:

- ``SpecError`` (a ``ValueError``): a child spec or supervisor flag is invalid. Raised at the
  boundary, before anything starts. ``ConfigError`` is its form for a config file or dict, naming the
  file, the key path and the reason.
- ``StartError`` (a ``RuntimeError``): a supervisor could not start, with an Erlang-shaped ``reason``
  such as ``(shutdown, (failed_to_start_child, Id, Reason))``.
- ``ChildError`` (a ``RuntimeError``): a supervisor refused an API request (``start_child``,
  ``terminate_child``, ``restart_child``, ``delete_child``), with OTP's ``reason``: ``not_found``,
  ``running``, ``restarting``, ``simple_one_for_one``, ``already_present``,
  ``(already_started, Pid)``, ``max_children``, or the reason a start function failed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChildError", "ConfigError", "SpecError", "StartError", "SupervisorError"]


class SupervisorError(Exception):
    """Base of every error raised by :mod:`philipjose.supervisors`."""


class SpecError(SupervisorError, ValueError):
    """A child spec or supervisor flag is invalid.

    ``key`` is the offending key (``"shutdown"``, ``"strategy"``, ... or ``""`` for the whole
    value) and ``reason`` says what is wrong with it.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason)


class ConfigError(SpecError):
    """A supervision tree config is invalid: ``file`` (``"<dict>"`` for a dict), ``key`` (the key path,
    such as ``children[1].children[0].shutdown``) and ``reason``."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file = file
        SupervisorError.__init__(self, f"{file}: {key}: {reason}" if key else f"{file}: {reason}")
        self.key = key
        self.reason = reason


class StartError(SupervisorError, RuntimeError):
    """A supervisor failed to start; ``reason`` is the Erlang-shaped exit reason."""

    def __init__(self, reason: Any) -> None:
        self.reason = reason
        super().__init__(f"supervisor failed to start: {reason!r}")


class ChildError(SupervisorError, RuntimeError):
    """A supervisor refused a child request; ``reason`` is OTP's error term for it."""

    def __init__(self, reason: Any) -> None:
        self.reason = reason
        super().__init__(f"supervisor refused the request: {reason!r}")
