"""A throwaway certificate authority for the TLS tests, made with the real ``openssl`` command.

:func:`make_pki` creates, in a folder: a CA (``ca.pem``, its key ``ca.key``), a node certificate it
signs (``node.pem`` / ``node.key``: X.509 v3, extended key usage serverAuth + clientAuth,
subjectAltName ``DNS:localhost``, ``DNS:<this host's name>``, ``IP:127.0.0.1``), and a second,
unrelated CA (``rogue-ca.pem``) with a node certificate of its own (``rogue.pem`` / ``rogue.key``)
that the first CA does not vouch for. Keys are EC P-256 (fast to make; OTP and Python both accept
them). :func:`write_optfile` writes an OTP ``-ssl_dist_optfile`` for a set of files.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class NodeFiles:
    """One node's certificate, key, and the CA file it trusts."""

    certfile: Path
    keyfile: Path
    cafile: Path


@dataclass(frozen=True)
class PKI:
    """``good``: signed by the CA everybody trusts; ``rogue``: signed by another CA (trusting that one)."""

    good: NodeFiles
    rogue: NodeFiles
    folder: Path


def _run(openssl: str, *args: str, cwd: Path) -> None:
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True)


def _ca(openssl: str, folder: Path, name: str) -> None:
    _run(
        openssl, "req", "-x509", "-new", *_KEY, "-keyout", f"{name}.key", "-out", f"{name}.pem",
        "-days", "2", "-subj", f"/CN=philipjose test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip


def _leaf(openssl: str, folder: Path, name: str, ca: str) -> None:
    hosts = {"localhost", socket.gethostname(), socket.gethostname().split(".")[0]}
    san = ",".join([*(f"DNS:{h}" for h in sorted(hosts)), "IP:127.0.0.1"])
    (folder / f"{name}.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        f"subjectAltName={san}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _run(openssl, "req", "-new", *_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr",
         "-subj", f"/CN=philipjose test {name}", cwd=folder)  # fmt: skip
    _run(
        openssl, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-set_serial", str(secrets.randbits(63)), "-days", "2", "-out", f"{name}.pem",
        "-extfile", f"{name}.ext",
        cwd=folder,
    )  # fmt: skip


def make_pki(openssl: str, folder: Path) -> PKI:
    """Make the CAs and certificates described in the module docstring in ``folder``."""
    _ca(openssl, folder, "ca")
    _leaf(openssl, folder, "node", "ca")
    _ca(openssl, folder, "rogue-ca")
    _leaf(openssl, folder, "rogue", "rogue-ca")
    good = NodeFiles(folder / "node.pem", folder / "node.key", folder / "ca.pem")
    rogue = NodeFiles(folder / "rogue.pem", folder / "rogue.key", folder / "rogue-ca.pem")
    return PKI(good, rogue, folder)


def write_optfile(path: Path, files: NodeFiles) -> Path:
    """An ``-ssl_dist_optfile`` for ``erl``: verify_peer and fail_if_no_peer_cert on both sides."""
    common = (
        f'{{certfile, "{files.certfile}"}}, {{keyfile, "{files.keyfile}"}}, '
        f'{{cacertfile, "{files.cafile}"}}, {{verify, verify_peer}}, {{secure_renegotiate, true}}'
    )
    path.write_text(f"[{{server, [{common}, {{fail_if_no_peer_cert, true}}]}},\n {{client, [{common}]}}].\n")
    return path
