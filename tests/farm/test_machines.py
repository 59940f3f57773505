"""The machine registry: records, the TOML file (reading with checks, writing by hand), the edits."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from philipjose.farm import _toml
from philipjose.farm.errors import MachinesError
from philipjose.farm.machines import (
    Machine,
    add_machine,
    default_machines_path,
    dump_machines,
    load_machines,
    parse_machines,
    remove_machine,
    save_machines,
)

# any text TOML can hold: every code point but the surrogates
TEXT = st.text(alphabet=st.characters(codec="utf-8"))


# -- the TOML writer ---------------------------------------------------------------------------------


@given(TEXT)
def test_strings_round_trip(text: str) -> None:
    assert tomllib.loads(f"v = {_toml.format_string(text)}\n") == {"v": text}


@given(TEXT)
def test_keys_round_trip(key: str) -> None:
    assert tomllib.loads(f"{_toml.format_key(key)} = 1\n") == {key: 1}


@given(
    st.dictionaries(
        TEXT,
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.booleans(),
            TEXT,
            st.lists(TEXT, max_size=4),
            st.dictionaries(TEXT, st.one_of(st.integers(0, 9), TEXT), max_size=3),
        ),
        max_size=5,
    )
)
def test_documents_round_trip(document: dict[str, object]) -> None:
    assert tomllib.loads(_toml.dumps(document, header="a header\nof two lines")) == document


def test_escapes_are_the_short_forms_where_toml_has_them() -> None:
    assert _toml.format_string('a"b\\c\td\ne\x00\x7f\x1bé') == '"a\\"b\\\\c\\td\\ne\\u0000\\u007F\\u001Bé"'
    assert _toml.format_key("plain-key_1") == "plain-key_1"
    assert _toml.format_key("a.b") == '"a.b"'
    assert _toml.format_key("") == '""'


def test_writer_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError, match="float"):
        _toml.dumps({"x": 1.5})
    with pytest.raises(TypeError, match="arrays of strings"):
        _toml.dumps({"x": [[1]]})
    with pytest.raises(ValueError, match="surrogate"):
        _toml.dumps({"x": "\ud800"})


def test_empty_table_is_written_as_a_header() -> None:
    assert tomllib.loads(_toml.dumps({"machines": {"a": {}}})) == {"machines": {"a": {}}}


# -- records ---------------------------------------------------------------------------------------------


def test_machine_defaults() -> None:
    local = Machine("localhost")
    assert local.is_local and local.workers is None and local.ssh_options == ()
    assert local.python_command() == sys.executable
    remote = Machine("127.0.0.1")
    assert not remote.is_local
    assert remote.python_command() == "python3"


def test_machine_list_options_become_a_tuple() -> None:
    machine = Machine("box", ssh_options=["Port=22"])  # type: ignore[arg-type]
    assert machine.ssh_options == ("Port=22",)
    hash(machine)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": ""}, "machine host must not be empty"),
        ({"host": "-oProxyCommand=evil"}, "must not start with '-'"),
        ({"host": "a b"}, "must not contain spaces"),
        ({"host": "a\nb"}, "must not contain spaces"),
        ({"host": "x" * 256}, "at most 255"),
        ({"host": "box", "workers": 0}, "workers must be an integer from 1 to 4096, not 0"),
        ({"host": "box", "workers": 4097}, "not 4097"),
        ({"host": "box", "workers": True}, "not True"),
        ({"host": "box", "python": ""}, "python must not be empty"),
        ({"host": "box", "python": "py\x00"}, "control characters"),
        ({"host": "box", "ssh_options": "Port=22"}, 'must be a list of "Key=Value" strings'),
        ({"host": "box", "ssh_options": ("Port 22",)}, '[0] must look like "Key=Value"'),
        ({"host": "box", "ssh_options": ("Port=",)}, "must look like"),
        ({"host": "box", "ssh_options": ("Port=22", "-oX=y")}, "[1] must look like"),
        ({"host": "box", "ssh_options": ("A=b\nc",)}, "must look like"),
        ({"host": "box", "ssh_options": (22,)}, "[0] must be a string, not int"),
    ],
)
def test_machine_refuses_bad_fields(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(MachinesError) as info:
        Machine(**kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_ssh_command_puts_machine_options_first() -> None:
    machine = Machine("me@box", ssh_options=("Port=2222", "BatchMode=no"))
    assert machine.ssh_command("python3 -") == [
        "ssh",
        "-o",
        "Port=2222",
        "-o",
        "BatchMode=no",
        "-o",
        "BatchMode=yes",
        "--",
        "me@box",
        "python3 -",
    ]


def test_remote_python_is_quoted_but_keeps_tilde() -> None:
    assert Machine("b", python="/opt/my python/bin/python3").remote_python() == "'/opt/my python/bin/python3'"
    assert Machine("b", python="~/venv/bin/python").remote_python() == "~/venv/bin/python"
    assert Machine("b", python="~/a b/python").remote_python() == "~/'a b/python'"
    assert Machine("b", python="$(reboot)").remote_python() == "'$(reboot)'"


# -- the file ------------------------------------------------------------------------------------------

SAMPLE = [
    Machine("localhost", workers=2),
    Machine("build-7.example.org", 8, "/opt/python3.12/bin/python3", ("Port=2222", "User=farm")),
    Machine("me@10.0.0.3"),
]


def test_file_round_trip() -> None:
    text = dump_machines(SAMPLE)
    assert text.startswith("# philipjose machines")
    assert list(parse_machines(text).values()) == SAMPLE
    assert tomllib.loads(text) == {
        "version": 1,
        "machines": {
            "localhost": {"workers": 2},
            "build-7.example.org": {
                "workers": 8,
                "python": "/opt/python3.12/bin/python3",
                "ssh_options": ["Port=2222", "User=farm"],
            },
            "me@10.0.0.3": {},
        },
    }


def test_empty_registry_round_trip() -> None:
    assert parse_machines(dump_machines([])) == {}
    assert parse_machines("") == {}


HOSTS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="\x85"),
    min_size=1,
    max_size=40,
).filter(lambda h: not h.startswith("-") and not any(c.isspace() for c in h))
OPTIONS = st.tuples(
    st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,15}", fullmatch=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(
        lambda v: not v[0].isspace()
    ),
).map(lambda kv: f"{kv[0]}={kv[1]}")
MACHINES = st.builds(
    Machine,
    host=HOSTS,
    workers=st.none() | st.integers(1, 4096),
    python=st.none()
    | st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1).filter(str.strip),
    ssh_options=st.lists(OPTIONS, max_size=3).map(tuple),
)


@given(st.lists(MACHINES, max_size=5, unique_by=lambda m: m.host))
def test_any_registry_round_trips(machines: list[Machine]) -> None:
    assert list(parse_machines(dump_machines(machines)).values()) == machines


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = ", "m.toml: not valid TOML: "),
        ("version = 2\n", "m.toml: version: this philipjose reads version 1, not 2"),
        ("version = true\n", "m.toml: version: this philipjose reads version 1, not True"),
        ("colour = 1\n", "m.toml: colour: unknown key"),
        ("machines = 3\n", "m.toml: machines: must be a table"),
        ("[machines]\nbox = 3\n", "m.toml: machines.box: must be a table, not int"),
        ('[machines."a b"]\n', 'm.toml: machines."a b": host name must not contain spaces'),
        ("[machines.box]\nworker = 2\n", "m.toml: machines.box.worker: unknown key (expected workers"),
        ('[machines.box]\nworkers = "four"\n', "m.toml: machines.box.workers: must be an integer from 1"),
        (
            "[machines.box]\nworkers = 0\n",
            "m.toml: machines.box.workers: must be an integer from 1 to 4096, not 0",
        ),
        ("[machines.box]\npython = 3\n", "m.toml: machines.box.python: must be a string, not int"),
        ('[machines."a.b"]\nssh_options = "Port=1"\n', 'm.toml: machines."a.b".ssh_options: must be a list'),
        (
            '[machines.box]\nssh_options = ["Port 1"]\n',
            'm.toml: machines.box.ssh_options: [0] must look like "Key=Value"',
        ),
        ('[machines.box]\nkind = "slurmish"\n', "m.toml: machines.box.kind: must be one of 'ssh', 'erlang'"),
        (
            '[machines.box]\nkind = "erlang"\n',
            "m.toml: machines.box.kind: 'erlang' needs the host to be a node",
        ),
        (
            '[machines."e@h"]\nkind = "erlang"\npython = "python3"\n',
            "m.toml: machines.\"e@h\".python: unknown key (expected workers, kind; for kind 'erlang')",
        ),
    ],
)
def test_parse_errors_name_file_key_and_problem(text: str, message: str) -> None:
    with pytest.raises(MachinesError) as info:
        parse_machines(text, "m.toml")
    assert str(info.value).startswith(message)


def test_load_missing_file_is_empty(tmp_path: Path) -> None:
    assert load_machines(tmp_path / "nope.toml") == {}


def test_load_refuses_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_bytes(b"version = 1\n# \xff\n")
    with pytest.raises(MachinesError, match="not UTF-8"):
        load_machines(path)


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[machines.box]\nworkers = -1\n")
    with pytest.raises(MachinesError, match=f"^{path}: machines.box.workers: "):
        load_machines(path)


def test_save_creates_folders_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "config" / "philipjose" / "machines.toml"
    save_machines(path, SAMPLE)
    save_machines(path, SAMPLE[:1])
    assert list(load_machines(path).values()) == SAMPLE[:1]
    assert os.listdir(path.parent) == ["machines.toml"]


def test_add_and_remove(tmp_path: Path) -> None:
    path = tmp_path / "machines.toml"
    add_machine(path, Machine("localhost", workers=2))
    add_machine(path, Machine("box", ssh_options=("Port=2222",)))
    with pytest.raises(MachinesError, match="box is already registered"):
        add_machine(path, Machine("box"))
    add_machine(path, Machine("box", workers=3), replace=True)
    assert load_machines(path) == {"localhost": Machine("localhost", 2), "box": Machine("box", 3)}
    assert remove_machine(path, "box") == Machine("box", 3)
    assert remove_machine(path, "box") is None
    assert list(load_machines(path)) == ["localhost"]


def test_default_path_follows_xdg(tmp_path: Path) -> None:
    config = str(tmp_path / "xdg")
    assert default_machines_path({"XDG_CONFIG_HOME": config, "HOME": "/h"}) == Path(
        config, "philipjose", "machines.toml"
    )
    home = str(tmp_path / "home")
    expected = Path(home, ".config", "philipjose", "machines.toml")
    assert default_machines_path({"HOME": home}) == expected
    assert default_machines_path({"XDG_CONFIG_HOME": "", "HOME": home}) == expected
    assert default_machines_path({"XDG_CONFIG_HOME": "relative/dir", "HOME": home}) == expected


def test_erlang_nodes_are_machines_of_kind_erlang() -> None:
    text = '[machines."calc@build-8"]\nkind = "erlang"\nworkers = 16\n\n[machines.localhost]\nworkers = 2\n'
    machines = parse_machines(text)
    assert machines["calc@build-8"] == Machine("calc@build-8", 16, kind="erlang")
    assert machines["localhost"].kind == "ssh"
    assert parse_machines(dump_machines(machines.values())) == machines
    with pytest.raises(MachinesError, match="does not apply"):
        Machine("e@h", kind="erlang", ssh_options=("Port=2",))
