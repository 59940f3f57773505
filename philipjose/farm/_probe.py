"""The probe that machine validation runs with a machine's own python.

This file is not imported by philipjose: its source text is sent on the standard input of ``python -``
(locally, or at the end of an ``ssh`` command), followed by one line calling ``_main(check)``. So it
uses only the standard library and syntax every Python 3 accepts (no f-strings, no variable
annotations, string annotations only), so that an old interpreter still reports its version instead
of failing with a SyntaxError. It prints one line: ``PHILIPJOSE-PROBE <json>``; anything the user's
check prints goes to stderr, so it cannot be mistaken for that line.
"""

import json
import os
import platform
import socket
import sys
import traceback

MARKER = "PHILIPJOSE-PROBE "


def _describe(exc: "BaseException") -> str:
    text = str(exc)
    name = type(exc).__name__
    return name + ": " + text if text else name


def _cores() -> "object":
    try:
        return len(os.sched_getaffinity(0))  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        return os.cpu_count()


def _memory() -> "object":
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _memory_available() -> "object":
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _philipjose() -> "object":
    try:
        import philipjose

        return {"version": str(philipjose.__version__), "error": None}
    except Exception as exc:
        return {"version": None, "error": _describe(exc)}


def _run_check(spec: "str") -> "object":
    """Import ``module:function`` and call it with no arguments.

    None or a true value passes; a string is the reason for refusing; any other false value refuses;
    an exception (SystemExit included) refuses with the exception as the reason.
    """
    module_name, _, attribute = spec.partition(":")
    saved = sys.stdout
    sys.stdout = sys.stderr
    try:
        import importlib

        target = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
        result = target()  # type: ignore[operator]
    except (Exception, SystemExit) as exc:
        traceback.print_exc()
        return {"passed": False, "reason": "raised " + _describe(exc)}
    finally:
        sys.stdout = saved
    if isinstance(result, str):
        return {"passed": False, "reason": result or "returned an empty reason"}
    if result is None or result:
        return {"passed": True, "reason": ""}
    return {"passed": False, "reason": "returned " + repr(result)}


def _main(check: "object") -> None:
    facts = {
        "python_version": list(sys.version_info[:3]),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": sys.platform,
        "hostname": socket.gethostname(),
        "cores": _cores(),
        "memory": _memory(),
        "memory_available": _memory_available(),
        "philipjose": _philipjose(),
        "check": _run_check(check) if isinstance(check, str) else None,
    }
    sys.stdout.write(MARKER + json.dumps(facts) + "\n")
    sys.stdout.flush()
