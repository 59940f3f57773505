"""Sentinel values shared by the sans-I/O protocol objects (h11 style).

A sentinel is a unique named object compared with ``is``: the states of the handshake machine, and
``NEED_DATA``, which ``next_event()`` returns when the bytes received so far hold no whole event.
"""

from __future__ import annotations

from typing import Final

__all__ = ["NEED_DATA", "Sentinel"]


class Sentinel:
    """A unique named value; its ``repr`` is its name."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: ``next_event()`` returns this when more bytes are needed before the next event is complete.
NEED_DATA: Final = Sentinel("NEED_DATA")
