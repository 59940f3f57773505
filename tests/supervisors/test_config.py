"""Trees from TOML: the format, and errors naming file, key path and reason before anything starts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from philipjose.supervisors.config import SubtreeConfig, import_callable, load_config
from philipjose.supervisors.errors import ConfigError
from philipjose.supervisors.spec import ChildSpec
from tests.supervisors import targets

IDLE = "tests.supervisors.targets:idle"

GOOD = f"""
strategy = "rest_for_one"
intensity = 3
period = 10
name = "top"

[node]
name = "tree@localhost"
cookie = "secret"
binaries = "str"
none = "nil"

[[children]]
id = "cache"
start = "{IDLE}"
args = [1000, "x"]
shutdown = 2

[[children]]
id = "pool"
strategy = "one_for_all"
intensity = 2
[[children.children]]
id = "conn"
start = "{IDLE}"
restart = "transient"
shutdown = "brutal_kill"
[[children.children]]
id = "inner"
auto_shutdown = "any_significant"
restart = "transient"
[[children.children.children]]
id = "job"
start = "{IDLE}"
restart = "temporary"
significant = true
"""


def write(tmp_path: Path, text: str, name: str = "tree.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_tree(tmp_path: Path) -> None:
    tree = load_config(write(tmp_path, GOOD))
    assert tree.flags.strategy == "rest_for_one"
    assert (tree.flags.intensity, tree.flags.period, tree.name) == (3, 10, "top")
    assert tree.node is not None and (tree.node.name, tree.node.cookie) == ("tree@localhost", "secret")
    assert (tree.node.binaries, tree.node.none) == ("str", "nil")
    cache, pool = tree.children
    assert isinstance(cache, ChildSpec)
    assert (cache.id, cache.start, cache.args, cache.shutdown) == ("cache", targets.idle, (1000, "x"), 2.0)
    assert isinstance(pool, SubtreeConfig)
    assert (pool.id, pool.shutdown, pool.restart) == ("pool", "infinity", "permanent")
    assert pool.tree.flags.strategy == "one_for_all"
    assert pool.tree.flags.intensity == 2 and pool.tree.flags.period == 5
    conn, inner = pool.tree.children
    assert isinstance(conn, ChildSpec) and conn.shutdown == "brutal_kill" and conn.restart == "transient"
    assert isinstance(inner, SubtreeConfig) and inner.restart == "transient"
    (job,) = inner.tree.children
    assert isinstance(job, ChildSpec) and job.significant


def test_dict_source_accepts_callables() -> None:
    tree = load_config({"children": [{"id": "a", "start": targets.idle}]})
    assert tree.source == "<dict>"
    assert tree.flags.strategy == "one_for_one"
    assert isinstance(tree.children[0], ChildSpec) and tree.children[0].start is targets.idle


BAD: list[tuple[str, str, str]] = [
    ('strategy = "one_for_some"', "strategy", "must be one of"),
    ("intensity = -1", "intensity", ">= 0"),
    ("period = 0", "period", "> 0"),
    ('colour = "red"', "colour", "unknown key"),
    (
        f'[[children]]\nid = "a"\nstart = "{IDLE}"\n[[children]]\nid = "a"\nstart = "{IDLE}"',
        "children[1].id",
        "duplicate",
    ),
    ('[[children]]\nid = "a"\nstart = "no_such_module_xyz:fn"', "children[0].start", "cannot import module"),
    (
        '[[children]]\nid = "a"\nstart = "tests.supervisors.targets:missing"',
        "children[0].start",
        "no attribute",
    ),
    (
        '[[children]]\nid = "a"\nstart = "tests.supervisors.targets:not_callable"',
        "children[0].start",
        "not callable",
    ),
    ('[[children]]\nid = "a"\nstart = "nocolon"', "children[0].start", "package.module:callable"),
    (f'[[children]]\nid = "a"\nstart = "{IDLE}"\nshutdown = "soon"', "children[0].shutdown", "brutal_kill"),
    (f'[[children]]\nid = "a"\nstart = "{IDLE}"\nshutdown = -3', "children[0].shutdown", ">= 0"),
    (f'[[children]]\nid = "a"\nstart = "{IDLE}"\nrestart = "often"', "children[0].restart", "must be one of"),
    (f'[[children]]\nid = "a"\nstart = "{IDLE}"\nflavour = 1', "children[0].flavour", "unknown key"),
    (f'[[children]]\nid = "a"\nstart = "{IDLE}"\nargs = 5', "children[0].args", "array"),
    ('[[children]]\nstart = "x:y"', "children[0].id", "missing"),
    ('[[children]]\nid = "a"', "children[0].start", "missing"),
    (
        f'[[children]]\nid = "a"\nstart = "{IDLE}"\nrestart = "temporary"\nsignificant = true',
        "children[0].significant",
        "auto_shutdown",
    ),
    (
        f'[[children]]\nid = "p"\n[[children.children]]\nid = "a"\nstart = "{IDLE}"\nshutdown = "x"',
        "children[0].children[0].shutdown",
        "brutal_kill",
    ),
    (
        f'[[children]]\nid = "p"\nstrategy = "nope"\n[[children.children]]\nid = "a"\nstart = "{IDLE}"',
        "children[0].strategy",
        "must be one of",
    ),
    (
        f'[[children]]\nid = "p"\nstart = "{IDLE}"\n[[children.children]]\nid = "a"\nstart = "{IDLE}"',
        "children[0].start",
        "unknown key",
    ),
    ('[[children]]\nid = "p"\ntype = "worker"\nchildren = []', "children[0].type", "supervisor"),
    ('strategy = "simple_one_for_one"', "children", "exactly one"),
    ('[node]\ncookie = "c"', "node.name", "non-empty"),
    ('[node]\nname = "n"\nport = 1', "node.port", "unknown key"),
    ('[node]\nname = "n"\nbinaries = "text"', "node.binaries", "must be"),
    ('[node]\nname = "n"\nnone = "null"', "node.none", "must be"),
    ('python_path = ["does-not-exist"]', "python_path", "not a directory"),
    ("name = 5", "name", "non-empty string"),
]


@pytest.mark.parametrize(("text", "key", "reason"), BAD)
def test_bad_configs_name_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.file == str(path)
    assert error.key == key
    assert reason in error.reason
    assert str(path) in str(error) and key in str(error)
    assert isinstance(error, ValueError)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "strategy = "))
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_module_failing_at_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pj_broken_mod.py").write_text("raise RuntimeError('bad module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as info:
        load_config({"children": [{"id": "a", "start": "pj_broken_mod:f"}]})
    assert "RuntimeError: bad module" in info.value.reason
    assert info.value.key == "children[0].start"


def test_python_path_is_relative_to_the_file(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "pj_cfg_workers_mod.py").write_text("async def work():\n    return None\n")
    path = write(
        tmp_path, 'python_path = ["code"]\n[[children]]\nid = "w"\nstart = "pj_cfg_workers_mod:work"\n'
    )
    try:
        tree = load_config(path)
        assert isinstance(tree.children[0], ChildSpec)
        assert tree.children[0].start.__module__ == "pj_cfg_workers_mod"
    finally:
        sys.path.remove(str(code.resolve()))
        sys.modules.pop("pj_cfg_workers_mod", None)


def test_class_that_is_not_a_genserver() -> None:
    with pytest.raises(ConfigError, match="not a GenServer"):
        load_config({"children": [{"id": "a", "start": ValueError}]})


@pytest.mark.parametrize("ref", ["", ":x", "m:", "m"])
def test_import_callable_malformed(ref: str) -> None:
    with pytest.raises(ValueError):
        import_callable(ref)


def test_import_callable_dotted() -> None:
    fn: Any = import_callable("tests.supervisors.targets:idle.__call__")
    assert callable(fn)
