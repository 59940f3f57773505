"""Every test in tests/term runs twice: once with the C accelerator, once with the pure-Python codec.

The accelerator (``philipjose.term._speedups``) is optional: where it was not built the
``accelerated`` runs are skipped with the reason, except when ``PHILIPJOSE_REQUIRE_ACCEL=1`` (CI sets
it), where they fail, so a CI machine whose build lost the extension cannot pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from philipjose.term import codec


@pytest.fixture(scope="module", autouse=True, params=["accelerated", "pure"])
def term_codec(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which codec the module's tests run against (switched for the module, restored after)."""
    before = codec.accelerated()
    wanted = request.param == "accelerated"
    if codec._use_accelerator(wanted) != wanted:
        codec._use_accelerator(before)
        reason = "the C accelerator philipjose.term._speedups is not built"
        if os.environ.get("PHILIPJOSE_REQUIRE_ACCEL") == "1":
            pytest.fail(f"{reason}, and PHILIPJOSE_REQUIRE_ACCEL=1 requires it")
        pytest.skip(reason)
    yield request.param
    codec._use_accelerator(before)
