"""TLS distribution, interoperable with OTP's ``inet_tls_dist`` (``erl -proto_dist inet_tls``).

With TLS on, a node listens and connects *only* with TLS: TLS starts at the first byte on the
distribution port, EPMD is unchanged (it still maps names to ports, in the clear), and the
distribution handshake runs inside TLS, cookie check included. OTP sets ``{packet, 4}`` on the TLS
socket from the start, so inside TLS every handshake message has a **4-byte** length prefix (plain
TCP uses 2 bytes); the frames after the handshake have 4-byte lengths as over TCP, and a tick is an
empty frame. Facts from OTP 25's ``inet_tls_dist`` (``ssl:connect``/``ssl:handshake`` with
``{packet, 4}``; ``f_setopts_pre_nodeup`` changes nothing) and ``tls_sender`` (``dist_data``
prefixes each frame with ``<<Len:32>>``, a tick is ``<<0:32>>``), checked against a real OTP 25 node
by ``tests/tls``.

What this module holds:

- :class:`TLSConfig`: the server-side context (for connections the node accepts) and the client-side
  context (for connections it makes), and the files they were built from, if any;
- :func:`tls_config`: contexts from PEM files, the way an ``ssl_dist_optfile`` describes them:
  ``certfile`` (this node's certificate chain), ``keyfile`` (its private key; default: inside
  ``certfile``), ``cafile`` (the CA certificates that sign the peers' certificates; default: the
  system's trust store) and ``verify`` (``"peer"``, the default: both sides must present a
  certificate signed by ``cafile``, like ``verify_peer`` + ``fail_if_no_peer_cert``; ``"none"``:
  encryption without authentication of the peer, like ``verify_none`` -- the cookie is then the only
  credential, so use it only to test);
- :func:`as_tls_config`: what the node's ``tls=`` option accepts (a :class:`TLSConfig`, one
  ``ssl.SSLContext`` usable for both sides, or a ``(server, client)`` pair) turned into a
  :class:`TLSConfig`;
- :func:`add_tls_arguments` / :func:`tls_from_args`: the ``--tls-certfile``, ``--tls-keyfile``,
  ``--tls-cafile``, ``--tls-verify {peer,none}`` command-line options.

With ``verify="peer"`` the client side also checks that the certificate of the node it connects to
names the host part of that node's name (``alive@HOST``: a ``subjectAltName`` DNS entry, or an IP
entry for a numeric host), as OTP's client does with ``server_name_indication``; the server side
checks only the CA signature of the client's certificate (OTP's default too).

Contexts are built with TLS 1.2 as the lowest version (OTP 25's ``inet_tls_dist`` offers only 1.2
unless its optfile sets ``versions``; two philipjose nodes agree on 1.3). No trio here.
"""

from __future__ import annotations

import argparse
import os
import ssl
from dataclasses import dataclass
from typing import Final

from philipjose.node.errors import NodeConfigError

__all__ = [
    "VERIFY_MODES",
    "TLSConfig",
    "TLSFiles",
    "TLSOption",
    "add_tls_arguments",
    "as_tls_config",
    "tls_config",
    "tls_from_args",
]

VERIFY_MODES: Final = ("peer", "none")
"""The values of ``verify`` / ``--tls-verify``."""


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """The PEM files a :class:`TLSConfig` was built from (see :func:`tls_config`)."""

    certfile: str
    keyfile: str | None = None
    cafile: str | None = None
    verify: str = "peer"

    def argv(self) -> list[str]:
        """These files as ``--tls-*`` command-line options (paths made absolute)."""
        out = ["--tls-certfile", os.path.abspath(self.certfile)]
        if self.keyfile is not None:
            out += ["--tls-keyfile", os.path.abspath(self.keyfile)]
        if self.cafile is not None:
            out += ["--tls-cafile", os.path.abspath(self.cafile)]
        return [*out, "--tls-verify", self.verify]


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """The TLS side of a node: ``server`` wraps accepted connections, ``client`` the ones it makes.

    ``files`` records the PEM files when the contexts came from :func:`tls_config` (the farm needs
    them to start its workers with the same options); None for contexts built by hand.
    """

    server: ssl.SSLContext
    client: ssl.SSLContext
    files: TLSFiles | None = None

    def __post_init__(self) -> None:
        if self.server.protocol == ssl.PROTOCOL_TLS_CLIENT:
            raise NodeConfigError("TLSConfig.server is a PROTOCOL_TLS_CLIENT context; it cannot accept")
        if self.client.protocol == ssl.PROTOCOL_TLS_SERVER:
            raise NodeConfigError("TLSConfig.client is a PROTOCOL_TLS_SERVER context; it cannot connect")


def _load_chain(ctx: ssl.SSLContext, files: TLSFiles) -> None:
    try:
        ctx.load_cert_chain(files.certfile, files.keyfile)
    except (OSError, ssl.SSLError) as exc:
        key = files.keyfile or files.certfile
        raise NodeConfigError(f"cannot load the certificate {files.certfile} / key {key}: {exc}") from exc


def _load_ca(ctx: ssl.SSLContext, files: TLSFiles, purpose: ssl.Purpose) -> None:
    if files.cafile is None:
        ctx.load_default_certs(purpose)
        return
    try:
        ctx.load_verify_locations(cafile=files.cafile)
    except (OSError, ssl.SSLError) as exc:
        raise NodeConfigError(f"cannot load the CA certificates {files.cafile}: {exc}") from exc


def tls_config(
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None = None,
    cafile: str | os.PathLike[str] | None = None,
    *,
    verify: str = "peer",
) -> TLSConfig:
    """Server and client contexts for a node from PEM files (see the module docstring).

    Raises :class:`NodeConfigError` for a bad ``verify`` or a file that cannot be loaded.
    """
    if verify not in VERIFY_MODES:
        raise NodeConfigError(f"verify must be one of {', '.join(VERIFY_MODES)}, not {verify!r}")
    files = TLSFiles(
        os.fspath(certfile),
        None if keyfile is None else os.fspath(keyfile),
        None if cafile is None else os.fspath(cafile),
        verify,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for ctx in (server, client):
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_chain(ctx, files)
    if verify == "peer":
        server.verify_mode = ssl.CERT_REQUIRED  # verify_peer + fail_if_no_peer_cert
        _load_ca(server, files, ssl.Purpose.CLIENT_AUTH)
        _load_ca(client, files, ssl.Purpose.SERVER_AUTH)  # CERT_REQUIRED and check_hostname by default
    else:
        server.verify_mode = ssl.CERT_NONE
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
    return TLSConfig(server, client, files)


TLSOption = TLSConfig | ssl.SSLContext | tuple[ssl.SSLContext, ssl.SSLContext] | None
"""What the node's ``tls=`` option accepts."""


def as_tls_config(tls: TLSOption) -> TLSConfig | None:
    """The node's ``tls=`` option as a :class:`TLSConfig` (None: plain TCP).

    One ``ssl.SSLContext`` must be usable for both sides (made with ``ssl.PROTOCOL_TLS``, not
    ``PROTOCOL_TLS_SERVER`` or ``PROTOCOL_TLS_CLIENT``); a pair is ``(server, client)``. Raises
    :class:`NodeConfigError` otherwise.
    """
    if tls is None or isinstance(tls, TLSConfig):
        return tls
    if isinstance(tls, ssl.SSLContext):
        if tls.protocol in (ssl.PROTOCOL_TLS_SERVER, ssl.PROTOCOL_TLS_CLIENT):
            raise NodeConfigError(
                "one SSLContext for tls= must serve both sides; pass (server_context, client_context) "
                "or a TLSConfig (see philipjose.node.tls.tls_config)"
            )
        return TLSConfig(tls, tls)
    if (
        isinstance(tls, tuple)
        and len(tls) == 2
        and isinstance(tls[0], ssl.SSLContext)
        and isinstance(tls[1], ssl.SSLContext)
    ):
        return TLSConfig(tls[0], tls[1])
    raise NodeConfigError(f"tls= takes a TLSConfig, an SSLContext or a (server, client) pair, not {tls!r}")


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--tls-certfile``, ``--tls-keyfile``, ``--tls-cafile`` and ``--tls-verify`` to ``parser``."""
    group = parser.add_argument_group(
        "TLS distribution", "with --tls-certfile the node listens and connects only with TLS"
    )
    group.add_argument("--tls-certfile", metavar="FILE", default=None, help="this node's certificate (PEM)")
    group.add_argument(
        "--tls-keyfile", metavar="FILE", default=None, help="its private key (PEM; default: in the certfile)"
    )
    group.add_argument(
        "--tls-cafile",
        metavar="FILE",
        default=None,
        help="CA certificates that sign the peers' certificates (PEM; default: the system's)",
    )
    group.add_argument(
        "--tls-verify",
        choices=VERIFY_MODES,
        default=None,  # None: "peer" (so that a later parse can tell whether it was given)
        help="peer (default): peers must present a certificate signed by the CA; none: do not check",
    )


def tls_from_args(args: argparse.Namespace) -> TLSConfig | None:
    """The :class:`TLSConfig` the ``--tls-*`` options of :func:`add_tls_arguments` describe, or None.

    Raises :class:`NodeConfigError` when ``--tls-keyfile``/``--tls-cafile`` come without
    ``--tls-certfile``, or a file cannot be loaded.
    """
    certfile = getattr(args, "tls_certfile", None)
    if certfile is None:
        if getattr(args, "tls_keyfile", None) is not None or getattr(args, "tls_cafile", None) is not None:
            raise NodeConfigError("--tls-keyfile and --tls-cafile need --tls-certfile")
        return None
    return tls_config(certfile, args.tls_keyfile, args.tls_cafile, verify=args.tls_verify or "peer")
