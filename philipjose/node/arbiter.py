"""Who wins when connection attempts concern one node name: pure decisions, after OTP's rules.

Theory of operation
-------------------
For one remote node name the node may have, at the same time: an authenticated connection (``up``),
its own outgoing attempt (``outgoing``: it connected and sent its name), and any number of accepted
attempts whose peers *claim* that name but have not proved the cookie yet. A claim proves nothing,
so an accepted attempt changes nothing the node has until its peer has sent a correct challenge
reply. The decisions, each a pure function the Trio adapter (:mod:`philipjose.node.node`) carries
out:

- :func:`decide_status` -- the status an acceptor answers to a name message (OTP's ``mark_pending``
  in ``dist_util`` and ``{accept_pending, ...}`` in ``net_kernel``): ``alive`` when connected
  (OTP's ``up_pending``), ``nok``/``ok_simultaneous`` by name order when our own attempt is under
  way (OTP's ``nok_pending``/``ok_pending``), else ``ok``. Unlike OTP, other *accepted* attempts do
  not count: OTP answers ``nok`` (or, with a smaller name, kills the older accepted attempt) when
  another accepted attempt for that name is pending, or closes at once (``already_pending``) when
  one is already answering ``alive``; here every accepted attempt runs on, and the first whose peer
  proves the cookie wins. So an attacker who names X and stalls cannot make the node refuse X.
- :func:`decide_alive_reply` -- the initiator's answer to ``alive`` (OTP's ``recv_status``:
  ``is_pending``): ``true`` unless the node already has a connection to that node.
- :func:`decide_proven` -- what to do once an accepted attempt's peer has proved the cookie (OTP's
  ``wait_pending``: only after ``recv_challenge_reply`` has checked the digest does ``net_kernel``
  kill the old connection's controller, and then the ack is sent): ``INSTALL`` it (cancelling our
  own outgoing attempt, as OTP's ``remarked``, but only now), ``REPLACE`` the old connection (we
  answered ``alive``, the peer said ``true``: the old connection is dead to it), or ``REFUSE`` it
  (a connection came up meanwhile without the peer having been asked ``alive``: the established
  one stays).
- :func:`decide_outgoing_done` -- what to do when our own attempt completes: ``INSTALL`` it, or
  ``REFUSE`` it when a connection came up meanwhile (it is a duplicate).
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "INSTALL",
    "REFUSE",
    "REPLACE",
    "Status",
    "Verdict",
    "decide_alive_reply",
    "decide_outgoing_done",
    "decide_proven",
    "decide_status",
]

Status = Literal["ok", "ok_simultaneous", "nok", "alive"]
Verdict = Literal["install", "replace", "refuse"]

INSTALL: Final = "install"
REPLACE: Final = "replace"
REFUSE: Final = "refuse"


def decide_status(ours: str, theirs: str, *, up: bool, outgoing: bool) -> Status:
    """The status an acceptor named ``ours`` answers to a name message claiming ``theirs``.

    ``up``: we have an authenticated connection to ``theirs``; ``outgoing``: our own attempt to
    connect to it is under way. Simultaneous connect (OTP's rule, names compared as atoms, i.e. by
    their UTF-8 bytes): the greater name's own attempt wins, so if ours is greater we answer ``nok``,
    else ``ok_simultaneous``.
    """
    if up:
        return "alive"
    if outgoing:
        return "nok" if ours.encode() > theirs.encode() else "ok_simultaneous"
    return "ok"


def decide_alive_reply(*, up: bool) -> Literal["true", "false"]:
    """The initiator's answer to ``alive``: ``"true"`` (our old connection is gone) unless ``up``."""
    return "false" if up else "true"


def decide_proven(told: str, *, up: bool) -> Verdict:
    """What to do once the peer of an accepted attempt has proved the cookie.

    ``told`` is the status we answered it; ``up``: a connection to that node is up now.
    """
    if not up:
        return INSTALL
    return REPLACE if told == "alive" else REFUSE


def decide_outgoing_done(*, up: bool) -> Verdict:
    """What to do when our own attempt has completed the handshake: a duplicate is refused."""
    return REFUSE if up else INSTALL
