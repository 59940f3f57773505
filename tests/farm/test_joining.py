"""The pure decisions about workers that start on their own: join requests, refusals, the
min_workers gate, server addresses and names, slot grants, and how a farm's machines split."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from philipjose.farm import Machine
from philipjose.farm.elastic_cli import farm_cookie, run_options
from philipjose.farm.farm import Farm
from philipjose.farm.joining import (
    JOIN,
    JoinRequest,
    dispatch_open,
    joiner_name,
    lost_message,
    parse_join,
    refusal,
    to_forget,
)
from philipjose.farm.server import ServerAddress, grant, parse_address, server_node_name, split_servers
from philipjose.term import Atom, Pid

_PID = Pid("j1@host", 5, 0, 1)


def _request(**changes: object) -> tuple[object, ...]:
    fields: dict[str, object] = {
        "pid": _PID,
        "host": b"build-7",
        "os_pid": 4242,
        "came": Atom("joined"),
        "origin": b"",
        "limit": 1 << 30,
    }
    fields.update(changes)
    return (JOIN, *fields.values())


def test_a_well_formed_join_request_is_parsed() -> None:
    assert parse_join(_request()) == JoinRequest(_PID, "build-7", 4242, "joined", "", 1 << 30)
    server = parse_join(_request(came=Atom("server"), origin=b"h:9000"))
    assert server is not None and server.came == "server" and server.origin == "h:9000"


@pytest.mark.parametrize(
    "bad",
    [
        _request(pid="j1@host"),
        _request(host="build-7"),
        _request(os_pid=b"1"),
        _request(came=Atom("launched")),
        _request(origin="h:1"),
        _request(limit=1.5),
        _request()[:-1],
        (Atom("other"), *_request()[1:]),
        [*_request()],
        "pj_worker_join",
    ],
)
def test_a_malformed_join_request_is_dropped(bad: object) -> None:
    assert parse_join(bad) is None


def test_refusals() -> None:
    request = parse_join(_request(limit=1000))
    assert request is not None
    assert refusal(request, closing=False, known=False, limit=1000) is None
    assert refusal(request, closing=True, known=False, limit=10) == "the farm is closing"
    assert "already in the farm" in (refusal(request, closing=False, known=True, limit=10) or "")
    too_small = refusal(request, closing=False, known=False, limit=2000)
    assert too_small is not None and "--max-message-size 2000" in too_small


def test_the_min_workers_gate_opens_once() -> None:
    assert dispatch_open(0, 0, False)
    assert not dispatch_open(3, 2, False)
    assert dispatch_open(3, 3, False)
    assert dispatch_open(3, 1, True)  # once open it stays open, even with fewer workers


def test_lost_message_and_joiner_names() -> None:
    level, message = lost_message("j1@h", "h", "lost its connection", 2, "joined")
    assert level == logging.WARNING
    assert message == (
        "joined worker j1@h on h lost its connection while running 2 tasks (charged to them); "
        "the farm does not restart it"
    )
    assert "while running" not in lost_message("j1@h", "h", "left", 0, "server")[1]
    assert joiner_name("build 7", "abc") == "jabc@build-7"
    assert joiner_name("h") != joiner_name("h")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9000", ServerAddress("d", 9000)),
        ("build-7:9000", ServerAddress("build-7", 9000)),
        ("10.0.0.5:1", ServerAddress("10.0.0.5", 1)),
        ("[::1]:65535", ServerAddress("::1", 65535)),
    ],
)
def test_server_addresses(text: str, expected: ServerAddress) -> None:
    assert parse_address(text, default_host="d") == expected
    assert parse_address(str(expected)) == expected


@pytest.mark.parametrize("bad", ["", "host:", ":9000", "host:0", "host:65536", "a b:1", "host:port"])
def test_bad_server_addresses(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_address(bad, default_host="d")


def test_an_address_needs_a_host_without_a_default() -> None:
    with pytest.raises(ValueError, match="no host"):
        parse_address("9000")


def test_server_names_follow_from_the_address() -> None:
    assert server_node_name("build-7", 9000) == "pj_server_9000@build-7"
    assert ServerAddress("::1", 9).node == "pj_server_9@::1" and str(ServerAddress("::1", 9)) == "[::1]:9"


def test_grants() -> None:
    assert grant(4, 0, None, stopping=False) == 4
    assert grant(4, 1, 2, stopping=False) == 2
    assert grant(4, 3, 2, stopping=False) == 1
    assert grant(4, 4, None, stopping=False) == "no free slot (all 4 serve other farms)"
    assert grant(4, 0, None, stopping=True) == "the server is stopping"


def test_machines_and_servers_split() -> None:
    launched = Machine("localhost", 2)
    machines, servers = split_servers([launched], ["h:1", ServerAddress("g", 2)])
    assert machines == [launched] and servers == [
        (ServerAddress("h", 1), None),
        (ServerAddress("g", 2), None),
    ]
    assert split_servers(None, []) == ([], [])
    with pytest.raises(TypeError):
        split_servers(None, "h:1")  # type: ignore[arg-type]


def test_farm_options_are_checked() -> None:
    with pytest.raises(ValueError, match="cookie"):
        Farm(servers=["h:1"])
    with pytest.raises(ValueError, match="accept_workers"):
        Farm(workers=0)
    with pytest.raises(ValueError, match="min_workers"):
        Farm(workers=0, accept_workers=True, min_workers=-1)
    with pytest.raises(ValueError, match="cookie"):
        Farm(workers=0, accept_workers=True, cookie="a\nb")
    with pytest.raises(ValueError):
        Farm(servers=["nohost"], cookie="c")
    Farm(machines=[], accept_workers=True)  # no launched worker at all
    Farm(servers=["h:1"], cookie="c")


def test_farm_run_options(tmp_path: Path) -> None:
    def args(**given: object) -> argparse.Namespace:
        base: dict[str, object] = {
            "accept_workers": None,
            "cookie_file": None,
            "min_workers": None,
            "server": None,
            "farmer_name": None,
            "farmer_port": None,
        }
        base.update(given)
        return argparse.Namespace(**base)

    assert run_options(args()) == {}
    with pytest.raises(ValueError, match="--cookie-file"):
        run_options(args(accept_workers=True))
    cookie = tmp_path / "cookie"
    options = run_options(args(accept_workers=True, cookie_file=cookie, min_workers=2, server=["h:1"]))
    assert cookie.stat().st_mode & 0o777 == 0o600
    assert options == {
        "cookie": cookie.read_bytes().strip(),
        "accept_workers": True,
        "servers": ["h:1"],
        "min_workers": 2,
    }
    assert farm_cookie(cookie) == options["cookie"]  # the same file gives the same cookie
    cookie.chmod(0o640)
    with pytest.raises(ValueError, match="readable or writable by others"):
        run_options(args(cookie_file=cookie))
    with pytest.raises(ValueError, match="--min-workers"):
        run_options(args(min_workers=-1))


def test_servers_are_machines_of_kind_server() -> None:
    from philipjose.farm.errors import MachinesError
    from philipjose.farm.machines import parse_machines

    text = '[machines."build-9:9000"]\nkind = "server"\nworkers = 4\n\n[machines.localhost]\nworkers = 2\n'
    machines = parse_machines(text, "m.toml")
    assert machines["build-9:9000"] == Machine("build-9:9000", 4, kind="server")
    launched, servers = split_servers(list(machines.values()), [])
    assert launched == [machines["localhost"]] and servers == [(ServerAddress("build-9", 9000), 4)]
    with pytest.raises(MachinesError, match="'server' needs the host to be the server's address"):
        parse_machines('[machines.box]\nkind = "server"\n', "m.toml")
    with pytest.raises(MachinesError, match="unknown key"):
        parse_machines('[machines."h:1"]\nkind = "server"\npython = "python3"\n', "m.toml")


def test_machines_add_list_and_validate_a_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from philipjose.cli import main

    path = str(tmp_path / "m.toml")
    assert (
        main(["machines", "add", "build-9:9000", "--kind", "server", "--workers", "4", "--machines", path])
        == 0
    )
    assert main(["machines", "list", "--machines", path]) == 0
    assert "worker server  slots=4" in capsys.readouterr().out
    assert main(["machines", "validate", "--machines", path]) == 0
    assert (
        "not validated (worker servers: philipjose farm ping ADDRESS): build-9:9000"
        in capsys.readouterr().out
    )
    assert main(["machines", "add", "box", "--kind", "server", "--machines", path]) == 2
    assert "'server' needs the host to be the server's address" in capsys.readouterr().err


async def test_a_farm_can_be_given_its_node_name_and_port() -> None:
    import secrets

    from tests.farm.conftest import _free_port

    name, port = f"fm-{secrets.token_hex(3)}", _free_port()
    async with Farm(workers=0, accept_workers=True, farmer_name=f"{name}@127.0.0.1", farmer_port=port) as f:
        assert f.node == f"{name}@127.0.0.1" and f.port == port and f.workers == []
    with pytest.raises(ValueError, match="farmer_name"):
        Farm(workers=0, accept_workers=True, farmer_name="@h")


def test_the_oldest_lost_joined_workers_are_forgotten() -> None:
    assert to_forget([True, False, True, True], 2) == {0}
    assert to_forget([True, False, True, True], 0) == {0, 2, 3}
    assert to_forget([False, True], 5) == set()
