"""``philipjose run TREE.toml`` with TLS keys in its ``[node]`` table: the keys are checked, paths
are relative to the file, and a real erl TLS node reaches the tree's node while a plain one cannot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from philipjose.supervisors import load_config
from philipjose.supervisors.errors import ConfigError
from tests.interop.dist_support import ROOT, private_epmd, start_peer
from tests.node.support import unique
from tests.tools import Otp

from .certs import PKI
from .support import compile_peer, erl_node


@pytest.fixture(scope="module")
def beam_dir(tmp_path_factory: pytest.TempPathFactory, otp: Otp) -> Path:
    return compile_peer(tmp_path_factory.mktemp(f"beam-{otp}"), otp)


def _tree(folder: Path, node_table: str) -> Path:
    path = folder / "tree.toml"
    path.write_text(
        f'python_path = ["{ROOT}"]\n[node]\n{node_table}\n'
        '[[children]]\nid = "echo"\nstart = "tests.supervisors.cli_workers:start_echo"\nargs = ["echo"]\n'
    )
    return path


def test_node_table_tls_keys(tmp_path: Path) -> None:
    config = load_config(
        _tree(
            tmp_path,
            'name = "t@localhost"\ntls_certfile = "c.pem"\ntls_cafile = "/ca.pem"\ntls_verify = "none"',
        )
    )
    assert config.node is not None
    assert config.node.tls_certfile == str(tmp_path / "c.pem")
    assert config.node.tls_keyfile is None and config.node.tls_cafile == "/ca.pem"
    assert config.node.tls_verify == "none"
    plain = load_config(_tree(tmp_path, 'name = "t@localhost"'))
    assert plain.node is not None and plain.node.tls_certfile is None and plain.node.tls_verify == "peer"
    with pytest.raises(ConfigError, match="need tls_certfile"):
        load_config(_tree(tmp_path, 'name = "t"\ntls_cafile = "ca.pem"'))
    with pytest.raises(ConfigError, match="tls_verify"):
        load_config(_tree(tmp_path, 'name = "t"\ntls_certfile = "c.pem"\ntls_verify = "always"'))
    with pytest.raises(ConfigError, match="tls_keyfile"):
        load_config(_tree(tmp_path, 'name = "t"\ntls_certfile = "c.pem"\ntls_keyfile = 3'))


@pytest.mark.interop
@pytest.mark.usefixtures("otp")
async def test_run_tree_node_over_tls(tmp_path: Path, beam_dir: Path, pki: PKI) -> None:
    name = unique("tree")
    files = pki.good
    tree = _tree(
        tmp_path,
        f'name = "{name}"\ncookie = "tree-cookie"\ntls_certfile = "{files.certfile}"\n'
        f'tls_keyfile = "{files.keyfile}"\ntls_cafile = "{files.cafile}"',
    )
    argv = [sys.executable, "-m", "philipjose", "run", str(tree)]
    async with private_epmd() as epmd, start_peer(argv, epmd, name) as run:
        await run.line("philipjose run: started")
        async with erl_node(beam_dir, epmd, name, "ping", files=files, cookie="tree-cookie") as erl:
            assert await erl.line("RESULT ") == "pong"
        async with erl_node(beam_dir, epmd, name, "ping", files=None, cookie="tree-cookie") as plain:
            assert await plain.line("RESULT ") == "pang"


def test_run_with_unloadable_certificates(tmp_path: Path) -> None:
    tree = _tree(tmp_path, f'name = "{unique("bad")}"\ntls_certfile = "missing.pem"')
    done = subprocess.run(
        [sys.executable, "-m", "philipjose", "run", str(tree)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "cannot load the certificate" in done.stderr
