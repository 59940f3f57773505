"""``philipjose run TREE.toml`` as a real subprocess: ready line, SIGTERM/SIGINT, exit statuses."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from tests.tools import require

REPO = Path(__file__).resolve().parents[2]

TREE = """
strategy = "one_for_one"
python_path = ["{tests}"]

[[children]]
id = "a"
start = "supervisors.cli_workers:polite"
args = ["a"]

[[children]]
id = "sub"
  [[children.children]]
  id = "b"
  start = "supervisors.cli_workers:polite"
  args = ["b"]

[[children]]
id = "c"
start = "supervisors.cli_workers:polite"
args = ["c"]
"""


class Lines:
    """Reads a subprocess's stdout line by line (bounded by a generous ``fail_after``)."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def readline(self) -> str:
        with trio.fail_after(60):
            while b"\n" not in self.buffer:
                chunk = await self.stream.receive_some()
                if not chunk:
                    line, self.buffer = self.buffer, b""
                    return line.decode()
                self.buffer += chunk
            line, _, self.buffer = self.buffer.partition(b"\n")
            return line.decode() + "\n"

    async def rest(self) -> list[str]:
        lines = []
        while line := await self.readline():
            lines.append(line.rstrip("\n"))
        return lines


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def _start(tree: Path) -> tuple[trio.Process, Lines]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "philipjose", "--log-level", "WARNING", "run", str(tree)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    assert process.stdout is not None
    return process, Lines(process.stdout)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_stops_the_tree_in_reverse_order_on_a_signal(tmp_path: Path, signum: int) -> None:
    tree = tmp_path / "tree.toml"
    tree.write_text(TREE.format(tests=(REPO / "tests").as_posix()))
    process, lines = await _start(tree)
    try:
        ready = await lines.readline()
        assert ready.startswith(f"philipjose run: started {tree}, top supervisor Pid(")
        process.send_signal(signum)
        rest = await lines.rest()
        with trio.fail_after(60):
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert rest == ["stopping c shutdown", "stopping b shutdown", "stopping a shutdown"]
    assert status == 0


async def test_a_second_signal_kills_a_tree_that_does_not_stop(tmp_path: Path) -> None:
    tree = tmp_path / "tree.toml"
    tree.write_text(
        f'python_path = ["{(REPO / "tests").as_posix()}"]\n'
        '[[children]]\nid = "l"\nstart = "supervisors.cli_workers:lingering"\nargs = ["l"]\n'
        'shutdown = "infinity"\n'
    )
    process, lines = await _start(tree)
    try:
        assert (await lines.readline()).startswith("philipjose run: started")
        process.send_signal(signal.SIGTERM)
        assert await lines.readline() == "stopping l\n"
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert status == 1


async def test_run_exits_1_when_the_top_supervisor_dies(tmp_path: Path) -> None:
    tree = tmp_path / "tree.toml"
    tree.write_text(
        f'intensity = 2\npython_path = ["{(REPO / "tests").as_posix()}"]\n'
        '[[children]]\nid = "a"\nstart = "supervisors.cli_workers:polite"\nargs = ["a"]\n'
        '[[children]]\nid = "d"\nstart = "supervisors.cli_workers:doomed"\n'
    )
    process, lines = await _start(tree)
    try:
        with trio.fail_after(60):
            output = await lines.rest()
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert output[0].startswith("philipjose run: started")
    assert output[1:] == ["stopping a shutdown"]
    assert status == 1


def test_run_rejects_an_invalid_tree_before_starting_anything(tmp_path: Path) -> None:
    tree = tmp_path / "bad.toml"
    tree.write_text(
        '[[children]]\nid = "a"\nstart = "tests.supervisors.cli_workers:polite"\nshutdown = "soon"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "philipjose", "run", str(tree)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{tree}: children[0].shutdown:" in result.stderr


def test_run_fails_with_1_when_the_tree_cannot_start(tmp_path: Path) -> None:
    tree = tmp_path / "fail.toml"
    tree.write_text(
        '[[children]]\nid = "s"\nstart = "tests.supervisors.util:failing_start"\nargs = ["nope"]\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "philipjose", "run", str(tree)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 1
    assert "failed_to_start_child" in result.stderr


async def test_the_example_tree_runs_as_a_user_would_run_it(tmp_path: Path) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "philipjose", "--log-level", "INFO", "run", "examples/tree.toml"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        cwd=REPO,
    )
    assert process.stdout is not None and process.stderr is not None
    lines = Lines(process.stdout)
    try:
        ready = await lines.readline()
        assert ready.startswith("philipjose run: started examples/tree.toml, top supervisor Pid(")
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            status = await process.wait()
        errors = "\n".join(await Lines(process.stderr).rest())
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert status == 0
    assert "janitor: shutting down (shutdown)" in errors
    assert "tree stopped" in errors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _expect(lines: Lines, text: str) -> list[str]:
    seen = []
    while True:
        line = await lines.readline()
        if not line:
            raise AssertionError(f"{text!r} never came; got {seen}")
        seen.append(line)
        if text in line:
            return seen


@asynccontextmanager
async def run_with_epmd(tree: Path, env: dict[str, str], *extra: str) -> AsyncIterator[trio.Process]:
    """A real ``epmd`` on ``env``'s ``ERL_EPMD_PORT`` and ``philipjose run TREE`` registered with it
    (its stdout piped); both killed on the way out if still running."""
    epmd = await trio.lowlevel.open_process(
        [require("epmd"), "-d", "-d", "-port", env["ERL_EPMD_PORT"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    run = None
    try:
        assert epmd.stdout is not None
        await _expect(Lines(epmd.stdout), "entering the main select() loop")
        run = await trio.lowlevel.open_process(
            [sys.executable, "-m", "philipjose", "run", str(tree), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        yield run
    finally:
        for process in (run, epmd):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()


@pytest.mark.interop
@pytest.mark.usefixtures("otp")  # from erl of each Erlang installation
async def test_run_with_a_node_table_is_reachable_from_erl(tmp_path: Path) -> None:
    require("epmd")
    erl_path = require("erl")
    port = _free_port()
    env = dict(_env(), ERL_EPMD_PORT=str(port))
    alive = f"pjtree_{secrets.token_hex(4)}"
    tree = tmp_path / "node.toml"
    tree.write_text(
        f'name = "pjtop"\n[node]\nname = "{alive}"\ncookie = "sup-test-cookie"\n'
        '[[children]]\nid = "echo"\nstart = "tests.supervisors.cli_workers:start_echo"\nargs = ["echo"]\n'
    )
    async with run_with_epmd(tree, env) as run:
        assert run.stdout is not None
        ready = await Lines(run.stdout).readline()
        assert ready.startswith("philipjose run: started")
        code = (
            '[_, Host] = string:split(atom_to_list(node()), "@"), '
            f'Node = list_to_atom("{alive}@" ++ Host), '
            'io:format("~p~n", [gen_server:call({echo, Node}, ping, 10000)]), '
            "[{echo, P, worker, [M]}] = supervisor:which_children({pjtop, Node}), "
            'io:format("~p ~p~n", [node(P) =:= Node, M]), '
            'io:format("~p~n", [supervisor:count_children({pjtop, Node})]), halt().'
        )
        with trio.fail_after(60):
            result = await trio.run_process(
                [
                    erl_path,
                    "-noshell",
                    "-sname",
                    f"probe_{alive}",
                    "-setcookie",
                    "sup-test-cookie",
                    "-start_epmd",
                    "false",
                    "-eval",
                    code,
                ],
                capture_stdout=True,
                env=env,
            )
        assert result.stdout.decode().split("\n")[:3] == [
            '{<<"pong">>,ping}',
            "true 'tests.supervisors.cli_workers.start_echo'",
            "[{specs,1},{active,1},{supervisors,0},{workers,1}]",
        ]
        run.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            assert await run.wait() == 0
