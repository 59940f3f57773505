"""Finding the real peers the interop tests need (erl, escript, epmd, elixir, sshd, openssl).

``require("erl")`` returns the tool's path. When the tool is missing the test is skipped with the
reason, except when ``PHILIPJOSE_REQUIRE_ERLANG=1`` (CI sets it): then the test fails, so a CI machine
that lost its Erlang cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil

import pytest

_EXTRA_DIRS = ("/usr/sbin", "/usr/lib/erlang/bin")


def require(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path=os.pathsep.join(_EXTRA_DIRS))
    if path is not None:
        return path
    reason = f"{tool} is not installed on this machine"
    if os.environ.get("PHILIPJOSE_REQUIRE_ERLANG") == "1":
        pytest.fail(f"{reason}, and PHILIPJOSE_REQUIRE_ERLANG=1 requires it")
    pytest.skip(reason)
