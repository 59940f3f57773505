"""Errors raised by the term codec.

``DecodeError`` is the peer's fault (bytes that are not a valid term) and is a ``ValueError``;
``EncodeError`` is the caller's fault (a Python value with no Erlang form) and is a ``TypeError``.
"""

from __future__ import annotations

__all__ = ["DecodeError", "EncodeError", "TermError"]


class TermError(Exception):
    """Base of every error raised by :mod:`philipjose.term`."""


class DecodeError(TermError, ValueError):
    """The bytes are not a valid (or an acceptable) External Term Format term."""


class EncodeError(TermError, TypeError):
    """The Python value has no External Term Format encoding."""
