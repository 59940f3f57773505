"""The pure decisions about competing connection attempts (philipjose.node.arbiter)."""

from __future__ import annotations

from philipjose.node.arbiter import (
    INSTALL,
    REFUSE,
    REPLACE,
    decide_alive_reply,
    decide_outgoing_done,
    decide_proven,
    decide_status,
)


def test_status_without_anything_is_ok() -> None:
    assert decide_status("a@h", "b@h", up=False, outgoing=False) == "ok"
    assert decide_status("b@h", "a@h", up=False, outgoing=False) == "ok"


def test_status_when_connected_is_alive() -> None:
    assert decide_status("a@h", "b@h", up=True, outgoing=False) == "alive"
    assert decide_status("b@h", "a@h", up=True, outgoing=False) == "alive"


def test_simultaneous_connect_follows_name_order() -> None:
    # Ours is greater: our own attempt wins, theirs is refused.
    assert decide_status("b@h", "a@h", up=False, outgoing=True) == "nok"
    # Theirs is greater: theirs goes on (and ours gives way once theirs proves the cookie).
    assert decide_status("a@h", "b@h", up=False, outgoing=True) == "ok_simultaneous"
    # Atoms compare as their UTF-8 text: "Z" (0x5a) < "a" (0x61), and a prefix is smaller.
    assert decide_status("a@h", "Z@h", up=False, outgoing=True) == "nok"
    assert decide_status("ab@h", "abc@h", up=False, outgoing=True) == "ok_simultaneous"
    assert decide_status("é@h", "z@h", up=False, outgoing=True) == "nok"


def test_alive_reply() -> None:
    assert decide_alive_reply(up=False) == "true"
    assert decide_alive_reply(up=True) == "false"


def test_proven_attempt() -> None:
    for told in ("ok", "ok_simultaneous", "alive"):
        assert decide_proven(told, up=False) == INSTALL
    assert decide_proven("alive", up=True) == REPLACE
    # A connection came up while this attempt ran, and the peer was never asked about it.
    assert decide_proven("ok", up=True) == REFUSE
    assert decide_proven("ok_simultaneous", up=True) == REFUSE


def test_outgoing_done() -> None:
    assert decide_outgoing_done(up=False) == INSTALL
    assert decide_outgoing_done(up=True) == REFUSE
