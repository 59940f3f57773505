"""The installations the interop tests run on (``tests/tools.py``): each test's ``require()`` gives its
installation's tools (the chroot's OTP 27 and Elixir 1.18 for ``otp27``), the pid a test starts is the
node's ``beam.smp`` (so killing it kills the node), and the paths tests pass to erl resolve inside."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil
import pytest
import trio

from tests.node.support import unique
from tests.tools import Otp, check_chroot, require

from .dist_support import PEER_SOURCE, private_epmd, start_peer

pytestmark = pytest.mark.interop

_RELEASE = 'io:format("RELEASE ~s ~s~n", [erlang:system_info(otp_release), code:root_dir()]), halt().'


def test_require_gives_the_installation_of_the_test(otp: Otp) -> None:
    done = subprocess.run(
        [require("erl"), "-noshell", "-start_epmd", "false", "-eval", _RELEASE],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    release = done.stdout.split()[1]
    elixir = subprocess.run(
        [require("elixir"), "--version"], capture_output=True, text=True, timeout=120, check=True
    )
    if otp.root is None:
        assert require("erl") == require("erl", otp)
        assert otp.name == "otp25"
    else:
        # the chroot's, checked once per session by the fixture, and really what require() runs
        assert (otp.release, release) == ("27", "27")
        assert otp.elixir.startswith("1.18.") and f"Elixir {otp.elixir} " in elixir.stdout
        assert Path(require("erl")).parent == otp.bin_dir


async def test_the_pid_is_the_beam_and_killing_it_kills_the_node(otp: Otp, tmp_path: Path) -> None:
    # a relative path from the caller's directory, a code path in the test's tmp dir, a repo source
    subprocess.run([require("erlc"), "-o", ".", str(PEER_SOURCE)], cwd=tmp_path, check=True, timeout=120)
    assert (tmp_path / "pj_peer.beam").is_file()
    name = unique("erl")
    code = 'io:format("READY ~s ~p~n", [os:getpid(), code:which(pj_peer)]), receive after infinity -> ok end.'
    argv = [require("erl"), "-noshell", "-sname", name, "-setcookie", "c", "-pa", str(tmp_path)]
    argv += ["-eval", code]
    async with private_epmd() as epmd, start_peer(argv, epmd, name) as peer:
        beam_pid, which = (await peer.line("READY ")).split(" ", 1)
        assert int(beam_pid) == peer.process.pid
        assert which == f'"{tmp_path}/pj_peer.beam"'
        process = psutil.Process(peer.process.pid)
        assert process.name() == "beam.smp"
        # the chroot's beam for otp27: the host sees its executable under the chroot's directory
        if otp.root is not None:
            assert process.exe().startswith(f"{otp.root}/")
        peer.kill()
        with trio.fail_after(30):
            await peer.process.wait()
        assert not psutil.pid_exists(peer.process.pid)


@pytest.mark.parametrize("otp", ["otp27"], indirect=True)
def test_the_check_names_a_directory_the_chroot_does_not_see(otp: Otp) -> None:
    assert otp.root is not None
    # the chroot's own directory is not bind-mounted inside it
    problem = check_chroot(Otp(otp.name, otp.root, otp.bin_dir), [Path(__file__).parent, otp.root])
    assert problem == f"not visible inside {otp.root} (bind-mount them at the same paths): {otp.root}"
