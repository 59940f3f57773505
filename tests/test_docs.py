"""Every code block in README.md and docs/*.md that claims to run is run, as written.

Which blocks run, by the fence's language:

- ``python``: written to a file and run with this interpreter in a fresh subprocess (timeout
  ``BLOCK_TIMEOUT``); it must exit 0. A trailing comment ``# prints: TEXT`` on a line says that TEXT is a
  line of the block's output; the test checks those lines appear, in order.
- ``toml``: a machines file (it has a ``[machines.*]`` table) goes through
  ``philipjose.farm.machines.parse_machines``; anything else is a supervision tree, run with
  ``philipjose run`` until it prints its ``started`` line, then stopped with SIGINT: it must exit 0
  (``examples/`` is importable, where the docs' ``tree_workers`` lives; a tree with a ``[node]``
  table needs ``needs epmd``).
- ``sh``: run with ``bash -euo pipefail``; ``console``: the ``$ `` lines are run the same way.
- ``erlang``: a sequence of expressions, evaluated by a fresh ``erl -noshell`` node; ``elixir``: run
  by ``elixir -e``. Both need ``needs erl`` (below) and a Python block of the same document that
  ``serves``; they run while it serves.
- Fences without a language, and ``text``, are output listings: not run.

All blocks of one document run in order in one fresh temporary directory (a shell block may make
files a later block uses). A block may be preceded by one marker line, an HTML comment that renders to
nothing:

- ``<!-- doc-test: skip (REASON) -->``: not run; the reason is required and the number of skipped
  blocks is held small (``MAX_SKIPPED``).
- ``<!-- doc-test: continue -->``: a python block that carries on from the previous python block of
  the document: the two are run as one script.
- ``<!-- doc-test: needs epmd -->``: before the block runs, the test starts a private EPMD on a free
  port (``ERL_EPMD_PORT`` is set for every later block of that document), so a node the block starts
  neither uses nor starts the machine's EPMD.
- ``<!-- doc-test: needs erl -->``: as ``needs epmd``, and the test starts a real ``erl`` node named
  ``erl@localhost`` with cookie ``secret``, which the block may ping, call and send to.
- ``<!-- doc-test: needs erl, serves -->``: as ``needs erl``, and the block is a node that serves until
  stopped: the test waits for its ``# prints:`` lines, runs the document's later erlang/elixir blocks
  against it, and stops it at the end of the document.

Without erl the documents that need it skip (they fail under ``PHILIPJOSE_REQUIRE_ERLANG=1``).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.tools import Otp, current, require

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = frozenset({"python", "toml", "sh", "console", "erlang", "elixir"})
LISTING_LANGUAGES = frozenset({"", "text"})
DIRECTIVES = frozenset({"continue", "needs epmd", "needs erl", "serves"})
BLOCK_TIMEOUT = 90.0
MAX_SKIPPED = 10  # blocks that cannot run as a program; each marker says why
ERL_NODE = "erl@localhost"
COOKIE = "secret"

_MARKER = re.compile(r"^<!--\s*doc-test:\s*(.*?)\s*-->$")
_SKIP = re.compile(r"^skip\s*\((.+)\)$")
_FENCE = re.compile(r"^```\s*([A-Za-z0-9_+-]*)\s*$")
_PRINTS = re.compile(r"#\s*prints:\s*(.+?)\s*$", re.MULTILINE)


class DocSyntaxError(ValueError):
    """A document's markers or fences are malformed."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    skip: str | None = None  # the reason
    directives: frozenset[str] = frozenset()

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in RUN_LANGUAGES and self.skip is None


def _parse_marker(text: str, where: str) -> tuple[str | None, frozenset[str]]:
    skip = _SKIP.match(text)
    if skip:
        return skip.group(1).strip(), frozenset()
    if text.startswith("skip"):
        raise DocSyntaxError(f"{where}: a skip marker needs its reason: <!-- doc-test: skip (why) -->")
    directives = frozenset(part.strip() for part in text.split(","))
    unknown = directives - DIRECTIVES
    if unknown:
        raise DocSyntaxError(f"{where}: unknown doc-test directive(s) {sorted(unknown)}")
    if "serves" in directives and "needs erl" not in directives:
        raise DocSyntaxError(f"{where}: 'serves' goes with 'needs erl'")
    return None, directives


def extract_blocks(path: Path, text: str | None = None) -> list[Block]:
    """The fenced blocks of one Markdown file, each with the marker on the line before its fence."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    index = 0
    marker: tuple[int, str] | None = None
    while index < len(lines):
        line = lines[index]
        found = _MARKER.match(line.strip())
        if found:
            marker = (index + 1, found.group(1))
            index += 1
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip() and marker is not None:
                raise DocSyntaxError(
                    f"{path.name}:{marker[0]}: a doc-test marker must be right before a fence"
                )
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise DocSyntaxError(f"{path.name}:{start + 1}: unclosed code fence")
        index += 1
        where = f"{path.name}:{start + 1}"
        skip, directives = _parse_marker(marker[1], where) if marker else (None, frozenset[str]())
        marker = None
        blocks.append(
            Block(path, start + 1, fence.group(1).lower(), "\n".join(body) + "\n", skip, directives)
        )
    return blocks


ALL_BLOCKS = {path: extract_blocks(path) for path in DOCS}


# -- pure checks of the extraction and of the docs' markers -------------------------------------------


def test_extract_reads_markers_languages_and_lines() -> None:
    text = (
        "intro\n\n```python\nprint(1)  # prints: 1\n```\n"
        "<!-- doc-test: skip (needs a cluster) -->\n```sh\nssh x\n```\n"
        "<!-- doc-test: needs erl, serves -->\n```python\nx\n```\n```\nlisting\n```\n"
    )
    blocks = extract_blocks(ROOT / "README.md", text)
    assert [(b.line, b.language, b.skip, sorted(b.directives)) for b in blocks] == [
        (3, "python", None, []),
        (7, "sh", "needs a cluster", []),
        (11, "python", None, ["needs erl", "serves"]),
        (14, "", None, []),
    ]
    assert [b.runs for b in blocks] == [True, False, True, False]
    assert blocks[0].text == "print(1)  # prints: 1\n"


def test_console_blocks_split_into_commands_and_output() -> None:
    text = "$ a x \\\n    --y\nout1  z\n$ b\n\nout2\n"
    assert _console_commands(text) == "a x \\\n    --y\nb\n"
    assert _console_output_heads(text) == ["out1", "out2"]


def test_expected_output_lines_are_checked_in_order() -> None:
    script = "print(1)  # prints: 1\nx = 2\nprint(x, 'b')   # prints: 2 b\n"
    assert _PRINTS.findall(script) == ["1", "2 b"]
    assert _in_order(["1", "2 b"], ["1", "noise", " 2 b "])
    assert not _in_order(["2 b", "1"], ["1", "2 b"])
    assert not _in_order(["1"], ["10"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- doc-test: skip -->\n```sh\nx\n```\n", "needs its reason"),
        ("<!-- doc-test: skip () -->\n```sh\nx\n```\n", "needs its reason"),
        ("<!-- doc-test: sometimes -->\n```sh\nx\n```\n", "unknown doc-test directive"),
        ("<!-- doc-test: serves -->\n```python\nx\n```\n", "goes with 'needs erl'"),
        ("<!-- doc-test: continue -->\nprose\n```python\nx\n```\n", "right before a fence"),
        ("```python\nx\n", "unclosed code fence"),
    ],
)
def test_extract_refuses_malformed_markers(text: str, message: str) -> None:
    with pytest.raises(DocSyntaxError, match=message):
        extract_blocks(ROOT / "README.md", text)


def test_every_block_runs_or_says_why_not() -> None:
    blocks = [block for blocks in ALL_BLOCKS.values() for block in blocks]
    languages = {block.language for block in blocks}
    assert languages <= RUN_LANGUAGES | LISTING_LANGUAGES, f"unknown fence languages {languages}"
    skipped = [block for block in blocks if block.skip is not None]
    assert all(block.language in RUN_LANGUAGES for block in skipped), "only runnable blocks are skipped"
    running = [block for block in blocks if block.runs]
    assert len(skipped) <= MAX_SKIPPED, "\n".join(f"{b.where}: {b.skip}" for b in skipped)
    assert len(running) >= 2 * len(skipped), (len(running), len(skipped))
    for block in blocks:
        if block.runs and ("serves" in block.directives or block.language in ("erlang", "elixir")):
            assert "needs erl" in block.directives, block.where
        if "continue" in block.directives:
            assert block.language == "python", block.where


# -- running a document ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Bounded polling of an external condition: the EPMD process accepts connections."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the EPMD exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"no EPMD on port {port} after {timeout} s") from None
            time.sleep(0.05)


class _Lines:
    """A subprocess whose stdout (with stderr) is collected line by line by a thread."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, expected: list[str], timeout: float, *, prefix: bool = False) -> None:
        """Wait until the output has the ``expected`` lines (or, with ``prefix``, lines starting with
        them) in order; fail if the process ends or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not _in_order(expected, self.lines, prefix=prefix):
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise AssertionError(f"expected lines {expected}; output was:\n" + "\n".join(self.lines))
                self._changed.wait(left)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self._thread.join(timeout=30)


def _in_order(expected: list[str], lines: list[str], *, prefix: bool = False) -> bool:
    stripped = iter(line.strip() for line in lines)
    if prefix:
        return all(any(line.startswith(want) for line in stripped) for want in expected)
    return all(any(line == want for line in stripped) for want in expected)


@dataclass
class _Doc:
    """What the blocks of one document share: a directory, an environment, the erl peer, servers."""

    cwd: Path
    stack: ExitStack
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    epmd: _Lines | None = None
    erl: _Lines | None = None
    servers: list[_Lines] = field(default_factory=list)

    def start_epmd(self) -> None:
        """philipjose's EPMD on a free port, in the foreground (stopped with the document)."""
        if self.epmd is not None:
            return
        port = _free_port()
        self.env["ERL_EPMD_PORT"] = str(port)
        argv = [sys.executable, "-m", "philipjose", "epmd", "--port", str(port), "--address", "127.0.0.1"]
        self.epmd = _Lines(argv, self.cwd, self.env)
        self.stack.callback(self.epmd.stop)
        _wait_for_port(port, self.epmd.process)

    def start_erl(self) -> None:
        if self.erl is not None:
            return
        erl = require("erl")
        self.start_epmd()
        argv = [erl, "-noshell", "-sname", ERL_NODE, "-setcookie", COOKIE, "-eval", 'io:format("READY~n")']
        self.erl = _Lines(argv, self.cwd, self.env)
        self.stack.callback(self.erl.stop)
        self.erl.wait_for(["READY"], 60)


def _run(argv: list[str], doc: _Doc, block: Block) -> str:
    try:
        done = subprocess.run(
            argv,
            cwd=doc.cwd,
            env=doc.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{block.where}: still running after {BLOCK_TIMEOUT} s: {exc.output}") from None
    assert done.returncode == 0, f"{block.where} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _run_python(block: Block, script: str, doc: _Doc) -> None:
    path = doc.cwd / f"block_{block.line}.py"
    path.write_text(script, encoding="utf-8")
    expected = _PRINTS.findall(script)
    if "serves" in block.directives:
        server = _Lines([sys.executable, "-u", str(path)], doc.cwd, doc.env)
        doc.stack.callback(server.stop)
        doc.servers.append(server)
        server.wait_for(expected, BLOCK_TIMEOUT)
        assert server.process.poll() is None, f"{block.where} should serve, but ended"
        return
    output = _run([sys.executable, str(path)], doc, block)
    assert _in_order(expected, output.splitlines()), f"{block.where}: expected {expected}, printed:\n{output}"


def _run_toml(block: Block, doc: _Doc) -> None:
    """A machines file is parsed; a tree is run with ``philipjose run`` until it has started, then
    stopped with SIGINT, which must end it cleanly (exit 0)."""
    path = doc.cwd / f"block_{block.line}.toml"
    path.write_text(block.text, encoding="utf-8")
    if re.search(r"^\[machines[.\]]", block.text, re.MULTILINE):
        from philipjose.farm.machines import parse_machines

        assert parse_machines(block.text, str(path)), f"{block.where}: no machines"
        return
    if re.search(r"^\[node\]", block.text, re.MULTILINE):
        assert "ERL_EPMD_PORT" in doc.env, f"{block.where}: a tree with [node] needs epmd (or erl)"
    env = dict(doc.env, PYTHONPATH=os.pathsep.join([str(ROOT / "examples"), doc.env.get("PYTHONPATH", "")]))
    tree = _Lines([sys.executable, "-m", "philipjose", "run", str(path)], doc.cwd, env)
    try:
        tree.wait_for([f"philipjose run: started {path}"], BLOCK_TIMEOUT, prefix=True)
        tree.process.send_signal(signal.SIGINT)
        code = tree.process.wait(timeout=BLOCK_TIMEOUT)
    finally:
        tree.stop()
    assert code == 0, f"{block.where}: philipjose run exited {code}:\n" + "\n".join(tree.lines)


def _run_peer_code(block: Block, doc: _Doc) -> None:
    assert doc.servers, f"{block.where}: an {block.language} block runs against a Python block that serves"
    name = f"doc{block.line}"
    if block.language == "erlang":
        code = block.text.strip().removesuffix(".")
        wrapped = (
            f"try begin {code} end of _ -> halt(0) catch C:R:S -> "
            'io:format("~p:~p~n~p~n", [C, R, S]), halt(1) end.'
        )
        argv = [require("erl"), "-noshell", "-sname", name, "-setcookie", COOKIE, "-eval", wrapped]
    else:
        argv = [require("elixir"), "--sname", name, "--cookie", COOKIE, "-e", block.text]
    _run(argv, doc, block)


def _console_commands(text: str) -> str:
    commands: list[str] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            commands.append(line[2:])
        elif commands and commands[-1].endswith("\\"):
            commands.append(line)
    return "\n".join(commands) + "\n"


def _console_output_heads(text: str) -> list[str]:
    """The first word of each output line of a console block (the part that does not vary)."""
    heads: list[str] = []
    continued = False
    for line in text.splitlines():
        if line.startswith("$ ") or continued:
            continued = line.endswith("\\")
            continue
        if line.strip():
            heads.append(line.split()[0])
    return heads


@contextmanager
def _document(tmp_path: Path) -> Iterator[_Doc]:
    """A sandbox: the blocks' home (so the machines registry) is the temporary directory, and the
    ``philipjose`` command is this interpreter's."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / ".config"))
    # the test's Erlang installation first: shell and python blocks that run erl get the same one
    path = [*current().path_dirs(), str(Path(sys.executable).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(path)
    with ExitStack() as stack:
        yield _Doc(tmp_path, stack, env)


def run_document(blocks: list[Block], tmp_path: Path) -> None:
    """Run the runnable ``blocks`` of one document, in order, in ``tmp_path``."""
    script_so_far = ""
    with _document(tmp_path) as doc:
        for block in blocks:
            if not block.runs:
                continue
            if "needs erl" in block.directives:
                doc.start_erl()
            elif "needs epmd" in block.directives:
                doc.start_epmd()
            if block.language == "python":
                script_so_far = (script_so_far if "continue" in block.directives else "") + block.text
                _run_python(block, script_so_far, doc)
            elif block.language == "toml":
                _run_toml(block, doc)
            elif block.language in ("sh", "console"):
                text = _console_commands(block.text) if block.language == "console" else block.text
                output = _run(
                    [shutil.which("bash") or "/bin/bash", "-euo", "pipefail", "-c", text], doc, block
                )
                if block.language == "console":
                    heads = [line.split()[0] for line in output.splitlines() if line.strip()]
                    for head in _console_output_heads(block.text):
                        assert head in heads, f"{block.where}: no output line starts with {head!r}:\n{output}"
            else:
                _run_peer_code(block, doc)
        for server in doc.servers:
            assert server.process.poll() is None, f"{blocks[0].path.name}: a serving block ended early"


def test_the_runner_checks_exit_status_output_and_joins_continued_blocks(tmp_path: Path) -> None:
    joined = "```python\nx = 2\n```\n<!-- doc-test: continue -->\n```python\nprint(x * 3)  # prints: 6\n```\n"
    run_document(extract_blocks(ROOT / "README.md", joined), tmp_path / "a")
    cases = [
        ("```python\nprint(6)  # prints: 7\n```\n", "expected \\['7'\\]"),
        ("```python\nx = 2\n```\n```python\nprint(x)\n```\n", "NameError"),
        ("```sh\nfalse\n```\n", "exited 1"),
        ("```console\n$ echo hi\nho\n```\n", "no output line starts with 'ho'"),
    ]
    for index, (text, message) in enumerate(cases):
        with pytest.raises(AssertionError, match=message):
            run_document(extract_blocks(ROOT / "README.md", text), tmp_path / str(index))


RUNNABLE_DOCS = [path for path in DOCS if any(block.runs for block in ALL_BLOCKS[path])]
# documents with a real erl or elixir peer: run on each Erlang installation (tests/conftest.py)
PEER_DOCS = [
    path
    for path in RUNNABLE_DOCS
    if any(
        b.runs and (b.language in ("erlang", "elixir") or "needs erl" in b.directives)
        for b in ALL_BLOCKS[path]
    )
]
OTHER_DOCS = [path for path in RUNNABLE_DOCS if path not in PEER_DOCS]


@pytest.mark.parametrize("path", OTHER_DOCS, ids=[str(p.relative_to(ROOT)) for p in OTHER_DOCS])
def test_document_blocks_run(path: Path, tmp_path: Path) -> None:
    run_document(ALL_BLOCKS[path], tmp_path)


@pytest.mark.interop
@pytest.mark.parametrize("path", PEER_DOCS, ids=[str(p.relative_to(ROOT)) for p in PEER_DOCS])
def test_document_blocks_run_with_erlang(path: Path, tmp_path: Path, otp: Otp) -> None:
    run_document(ALL_BLOCKS[path], tmp_path)


ERLANG_TABLE = "## What an Erlang node can do with a philipjose node"
_TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_the_erlang_table_names_tests_that_exist() -> None:
    """Each row of docs/distribution.md's table of what an Erlang node can do names tests that exist
    (module and function), unless it says the thing is not provided."""
    text = (ROOT / "docs" / "distribution.md").read_text(encoding="utf-8")
    assert ERLANG_TABLE in text
    section = text.split(ERLANG_TABLE, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")][
        1:
    ]
    assert len(rows) >= 20
    missing = []
    for row in rows:
        status = row.split(" | ")[1]
        refs = _TEST_REF.findall(row)
        if status.startswith("not provided"):
            assert refs == [] and row.rstrip().endswith("| — |"), row
            continue
        assert status.startswith(("works", "differs")), row
        assert refs, f"a row without a test: {row}"
        for module, function in refs:
            path = ROOT / module
            if not path.is_file() or function not in _test_functions(path):
                missing.append(f"{module}::{function}")
    assert missing == []
