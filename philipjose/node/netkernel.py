"""A minimal ``net_kernel``: the registered process Erlang's ``net_adm:ping/1`` calls.

``net_adm:ping(Node)`` does ``gen_server:call({net_kernel, Node}, {is_auth, node()})`` and expects
``yes``. Reaching this process at all means the handshake (and so the cookie) succeeded, so every
``{is_auth, _}`` call is answered ``yes``; any other call is answered ``{error, unsupported}``
(philipjose implements no other net_kernel requests).
"""

from __future__ import annotations

from typing import Any, Final

from philipjose.actors import receive, reply
from philipjose.term import Atom

__all__ = ["NAME", "net_kernel"]

NAME: Final = Atom("net_kernel")
_GEN_CALL: Final = Atom("$gen_call")
_IS_AUTH: Final = Atom("is_auth")
_YES: Final = Atom("yes")
_UNSUPPORTED: Final = (Atom("error"), Atom("unsupported"))


def _is_call(msg: Any) -> bool:
    return type(msg) is tuple and len(msg) == 3 and msg[0] == _GEN_CALL and type(msg[1]) is tuple


async def net_kernel() -> None:
    """The process body: answer ``$gen_call`` requests forever, ignore every other message."""
    while True:
        msg = await receive()
        if not _is_call(msg) or len(msg[1]) != 2:
            continue
        request = msg[2]
        if type(request) is tuple and len(request) == 2 and request[0] == _IS_AUTH:
            reply(msg[1], _YES)
        else:
            reply(msg[1], _UNSUPPORTED)
