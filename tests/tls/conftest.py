"""Session fixtures of the TLS tests: a throwaway PKI made with ``openssl``."""

from __future__ import annotations

import pytest

from tests.tools import require

from .certs import PKI, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """CA, node and rogue certificates, made once per test session (see :mod:`tests.tls.certs`)."""
    return make_pki(require("openssl"), tmp_path_factory.mktemp("pki"))
