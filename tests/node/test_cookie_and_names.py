"""Cookie resolution (argument, environment, ~/.erlang.cookie created 0400) and node names.

Every test uses a temporary HOME, never the real one."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

import philipjose as pj
from philipjose.node import NodeConfigError
from philipjose.node.cookie import COOKIE_ENV, cookie_path, resolve_cookie
from philipjose.node.names import (
    assign_dynamic_name,
    base36,
    is_long_name,
    make_node_name,
    mixed_names_refusal,
)


def test_argument_wins(tmp_path: Path) -> None:
    assert resolve_cookie("arg", env={COOKIE_ENV: "env"}, home=tmp_path) == b"arg"
    assert resolve_cookie(b"raw", env={}, home=tmp_path) == b"raw"
    assert not cookie_path(tmp_path).exists()


def test_environment_before_file(tmp_path: Path) -> None:
    cookie_path(tmp_path).write_text("file\n")
    assert resolve_cookie(env={COOKIE_ENV: "env"}, home=tmp_path) == b"env"
    assert resolve_cookie(env={COOKIE_ENV: ""}, home=tmp_path) == b"file"


def test_file_is_read_stripped(tmp_path: Path) -> None:
    cookie_path(tmp_path).write_text("  SECRET  \nsecond line\n")
    assert resolve_cookie(env={}, home=tmp_path) == b"SECRET"


def test_missing_file_is_created_0400(tmp_path: Path) -> None:
    cookie = resolve_cookie(env={}, home=tmp_path)
    path = cookie_path(tmp_path)
    assert len(cookie) == 20 and cookie.isalpha() and cookie.isupper()
    assert path.read_bytes() == cookie
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert resolve_cookie(env={}, home=tmp_path) == cookie  # stable from then on


def test_home_defaults_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(COOKIE_ENV, raising=False)
    cookie = resolve_cookie()
    assert (tmp_path / ".erlang.cookie").read_bytes() == cookie


@pytest.mark.parametrize("bad", ["", "é" * 300, "€uro", 42])
def test_bad_cookies(bad: object, tmp_path: Path) -> None:
    with pytest.raises(NodeConfigError):
        resolve_cookie(bad, home=tmp_path)  # type: ignore[arg-type]


def test_empty_cookie_file(tmp_path: Path) -> None:
    cookie_path(tmp_path).write_text("\n")
    with pytest.raises(NodeConfigError):
        resolve_cookie(env={}, home=tmp_path)


def test_unreadable_cookie_file(tmp_path: Path) -> None:
    cookie_path(tmp_path).mkdir()  # not a file
    with pytest.raises(NodeConfigError):
        resolve_cookie(env={}, home=tmp_path)


def test_short_and_long_names() -> None:
    short = socket.gethostname().split(".")[0]
    assert make_node_name("py") == f"py@{short}"
    assert make_node_name("py@somehost") == "py@somehost"
    assert make_node_name("py@host.example.org") == "py@host.example.org"
    assert is_long_name("py@host.example.org") and not is_long_name("py@host")


def test_long_name_needs_a_qualified_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getfqdn", lambda: "plainhost")
    with pytest.raises(NodeConfigError):
        make_node_name("py", longnames=True)
    monkeypatch.setattr(socket, "getfqdn", lambda: "box.example.org")
    assert make_node_name("py", longnames=True) == "py@box.example.org"


@pytest.mark.parametrize("bad", ["", "@host", "a b@host", "py@", "a@b@c", "x" * 300])
def test_bad_names(bad: str) -> None:
    with pytest.raises(NodeConfigError):
        make_node_name(bad)


@pytest.mark.parametrize(
    ("ours", "target", "refused"),
    [
        ("py@vm", "e@vm", None),
        ("py@vm", "e@host.example.org", "System NOT running to use fully qualified hostnames"),
        ("py@vm", "e@127.0.0.1", "System NOT running to use fully qualified hostnames"),
        ("py@vm", "e@::1", None),  # no dot: OTP's short-name check lets it through too
        ("py@host.example.org", "e@other.example.org", None),
        ("py@host.example.org", "e@127.0.0.1", None),  # an address is fine for long names
        ("py@host.example.org", "e@::1", None),
        ("py@host.example.org", "e@vm", "System running to use fully qualified hostnames"),
        ("py@127.0.0.1", "e@localhost", "System running to use fully qualified hostnames"),
    ],
)
def test_short_and_long_names_do_not_mix(ours: str, target: str, refused: str | None) -> None:
    why = mixed_names_refusal(ours, target)
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why and target.partition("@")[2] in why


def test_dynamic_names() -> None:
    assert base36(0) == "0" and base36(35) == "Z" and base36(36) == "10"
    assert base36((1 << 64) - 1) == "3W5E11264SGSF"  # integer_to_list(1 bsl 64 - 1, 36)
    draws = iter([1, 1, 36])
    assert assign_dynamic_name("vm", {"1@vm"}, lambda: next(draws)) == "10@vm"


@pytest.mark.parametrize(("option", "value"), [("binaries", "text"), ("none", "null")])
def test_bad_term_style_options(option: str, value: str) -> None:
    async def main() -> None:
        await pj.node.start("py", cookie="c", epmd=False, listen_host="127.0.0.1", **{option: value})

    with pytest.raises(NodeConfigError, match=option):
        pj.run(main)
