"""Supervisor reports through :mod:`logging`, shaped like OTP's supervisor and progress reports.

Logger ``philipjose.supervisors``. Each record carries ``record.report``: a dict with ``label``
(``"progress"``, ``"child_terminated"``, ``"start_error"``, ``"shutdown_error"``, ``"shutdown"``),
``supervisor`` (its name or pid), and for errors ``reason`` and ``offender`` (the child: ``pid``,
``id``, ``start``, ``restart_type``, ``significant``, ``shutdown``, ``child_type``). Progress reports
(a child started) are INFO; the others ERROR, as in OTP. Messages are formatted lazily.
"""

from __future__ import annotations

import logging
from typing import Any

from philipjose.supervisors.spec import ChildSpec
from philipjose.term.types import Atom

__all__ = ["LOGGER", "report_error", "report_progress", "report_unexpected"]

LOGGER = logging.getLogger("philipjose.supervisors")
_PYTHON_EXCEPTION = Atom("python_exception")


def _offender(spec: ChildSpec, pid: Any) -> dict[str, Any]:
    return {
        "pid": pid,
        "id": spec.id,
        "start": getattr(spec.start, "__qualname__", repr(spec.start)),
        "restart_type": spec.restart,
        "significant": spec.significant,
        "shutdown": spec.shutdown,
        "child_type": spec.type,
    }


class _Short:
    """Formats a reason for the log line: a crash reason without its traceback (the runtime logs
    that already); the full reason stays in ``record.report``."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        reason = self.reason
        if type(reason) is tuple and len(reason) == 4 and reason[0] == _PYTHON_EXCEPTION:
            kind = reason[1].decode("utf-8", "replace") if isinstance(reason[1], bytes) else reason[1]
            text = reason[2].decode("utf-8", "replace") if isinstance(reason[2], bytes) else reason[2]
            return f"python_exception {kind}: {text}"
        return repr(reason)


def report_progress(supervisor: Any, spec: ChildSpec, pid: Any) -> None:
    """PROGRESS REPORT: ``supervisor`` started child ``spec`` as ``pid``."""
    if LOGGER.isEnabledFor(logging.INFO):
        report = {"label": "progress", "supervisor": supervisor, "started": _offender(spec, pid)}
        LOGGER.info(
            "PROGRESS REPORT supervisor=%r started id=%r pid=%r",
            supervisor,
            spec.id,
            pid,
            extra={"report": report},
        )


def report_error(context: str, supervisor: Any, reason: Any, spec: ChildSpec, pid: Any) -> None:
    """SUPERVISOR REPORT with ``context`` (``child_terminated``, ``start_error``, ``shutdown_error``,
    ``shutdown``), the reason and the offending child."""
    if LOGGER.isEnabledFor(logging.ERROR):
        report = {
            "label": context,
            "supervisor": supervisor,
            "reason": reason,
            "offender": _offender(spec, pid),
        }
        LOGGER.error(
            "SUPERVISOR REPORT supervisor=%r context=%s reason=%r offender: id=%r pid=%r",
            supervisor,
            context,
            _Short(reason),
            spec.id,
            pid,
            extra={"report": report},
        )


def report_unexpected(supervisor: Any, message: Any) -> None:
    """A message the supervisor does not understand (logged and dropped, as OTP does)."""
    LOGGER.error("supervisor %r received unexpected message: %r", supervisor, message)
