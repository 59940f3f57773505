"""Session-wide fixtures: the Erlang/OTP installations the interop tests run against.

A test that uses ``otp`` (directly, through ``pytest.mark.usefixtures("otp")``, or through the autouse
fixture of ``tests/interop/conftest.py``) runs once on each installation, with test ids ending in
``[otp25]`` / ``[otp27]``; while it runs, ``tests.tools.require("erl")`` (and so every helper in
``tests/interop/dist_support.py``) gives that installation's tools. Module- and session-scoped fixtures
that start or compile Erlang code take ``otp`` as a parameter and pass it on (``require(tool, otp)``,
``compile_peer(out, otp)``). See ``tests/tools.py`` for how the OTP 27 chroot is found and checked.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools import HOST, ROOT, Otp, chroot_installation, using

# Known differences on OTP 27: these tests fail there (strict xfail: when fixed, they fail as XPASS so
# the entry is removed). Each says why; docs/distribution.md's table says the same.
KNOWN_ON_OTP27: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("otp") != "otp27":
            continue
        reason = KNOWN_ON_OTP27.get(item.nodeid.split("[", 1)[0])
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.fixture(scope="session", params=["otp25", "otp27"])
def otp(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Otp:
    """The installation this test runs on: the host's erl (``otp25``) or the OTP 27 chroot (``otp27``)."""
    if request.param == "otp25":
        return HOST
    base = tmp_path_factory.getbasetemp()
    visible = [ROOT, base, Path(tempfile.gettempdir())]
    return chroot_installation(request.param, base / "otp27-bin", visible)


@pytest.fixture(autouse=True)
def _otp_of_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """``require()`` answers with the running test's installation (the host's when it has none)."""
    installation = request.getfixturevalue("otp") if "otp" in request.fixturenames else None
    with using(installation):
        yield
