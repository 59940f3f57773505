"""A tiny TOML writer for the farm's own files (the standard library's ``tomllib`` only reads).

It writes what the farm's files hold and nothing more: tables (nested ``dict``), strings, integers,
booleans, and arrays of those scalars. Strings are TOML basic strings with every character TOML
forbids escaped (``"``, ``\\``, and the control characters); keys are bare when TOML allows it and
quoted otherwise. Anything else (floats, dates, arrays of tables, lone surrogates) raises
``TypeError``/``ValueError`` rather than writing something ``tomllib`` would read back differently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["dumps", "format_key", "format_string"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _escape_char(char: str) -> str:
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\u{code:04X}"
    if 0xD800 <= code <= 0xDFFF:
        raise ValueError(f"a lone surrogate (U+{code:04X}) cannot be written to a TOML file")
    return char


def format_string(text: str) -> str:
    """``text`` as a TOML basic string, quotes included."""
    return '"' + "".join(_escape_char(c) for c in text) + '"'


def format_key(key: str) -> str:
    """``key`` as a TOML key: bare (``workers``) when allowed, quoted (``"a.example"``) otherwise."""
    return key if _BARE_KEY.fullmatch(key) else format_string(key)


def _format_value(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return format_string(value)
    if isinstance(value, Sequence):
        items = []
        for item in value:
            if isinstance(item, Mapping) or (isinstance(item, Sequence) and not isinstance(item, str)):
                raise TypeError(f"{where}: only arrays of strings, integers and booleans are supported")
            items.append(_format_value(item, where))
        return "[" + ", ".join(items) + "]"
    raise TypeError(f"{where}: cannot write a {type(value).__name__} to TOML")


def _emit_table(table: Mapping[str, object], path: tuple[str, ...], lines: list[str]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    dotted = ".".join(format_key(p) for p in path)
    if path and (scalars or not tables):
        if lines:
            lines.append("")
        lines.append(f"[{dotted}]")
    for key, value in scalars:
        if not isinstance(key, str):
            raise TypeError(f"{dotted or 'top level'}: keys must be str, not {type(key).__name__}")
        lines.append(f"{format_key(key)} = {_format_value(value, '.'.join((*path, key)))}")
    for key, sub in tables:
        if not isinstance(key, str):
            raise TypeError(f"{dotted or 'top level'}: keys must be str, not {type(key).__name__}")
        _emit_table(sub, (*path, key), lines)


def dumps(document: Mapping[str, object], *, header: str = "") -> str:
    """``document`` as TOML text; ``header`` (may be several lines) is written first as comments.

    Scalars of a table come before its sub-tables, as TOML requires; an empty sub-table is written as
    a bare ``[header]`` so it reads back as an empty table.
    """
    lines: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]
    if lines:
        lines.append("")
    body: list[str] = []
    _emit_table(document, (), body)
    lines.extend(body)
    return "\n".join(lines) + "\n"
