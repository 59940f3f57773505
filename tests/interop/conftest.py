"""Every interop test runs on each Erlang/OTP installation: ``otp25``, ``otp27`` (``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from tests.tools import Otp


@pytest.fixture(autouse=True)
def _on_each_otp(otp: Otp) -> Otp:
    return otp
