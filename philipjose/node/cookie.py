"""Where a node's cookie comes from: the argument, ``$PHILIPJOSE_COOKIE``, or ``~/.erlang.cookie``.

As ``erl`` does, a missing ``~/.erlang.cookie`` is created with 20 random upper-case letters and mode
0400 (owner read only). The cookie is the full-trust secret of the cluster (see ``docs/distribution.md``):
a peer that knows it can do anything this node exposes.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Mapping
from pathlib import Path

from philipjose.node.errors import NodeConfigError

__all__ = ["COOKIE_ENV", "cookie_path", "resolve_cookie"]

#: The environment variable read when no cookie argument is given.
COOKIE_ENV = "PHILIPJOSE_COOKIE"

_COOKIE_LENGTH = 20


def cookie_path(home: str | os.PathLike[str] | None = None) -> Path:
    """``$HOME/.erlang.cookie`` (``home`` overrides ``$HOME``)."""
    return Path(home if home is not None else os.path.expanduser("~")) / ".erlang.cookie"


def _check(cookie: str | bytes, where: str) -> bytes:
    if isinstance(cookie, str):
        try:
            raw = cookie.encode("latin-1")
        except UnicodeEncodeError:
            raise NodeConfigError(f"the cookie from {where} must be Latin-1 text") from None
    elif isinstance(cookie, bytes):
        raw = cookie
    else:
        raise NodeConfigError(f"a cookie is str or bytes, not {type(cookie).__name__}")
    if not raw or len(raw) > 255:
        raise NodeConfigError(f"the cookie from {where} must be 1 to 255 characters")
    return raw


def resolve_cookie(
    cookie: str | bytes | None = None,
    *,
    env: Mapping[str, str] | None = None,
    home: str | os.PathLike[str] | None = None,
) -> bytes:
    """The cookie to use, as bytes.

    In order: ``cookie`` if given; else ``$PHILIPJOSE_COOKIE`` if set and not empty; else the first
    line of ``~/.erlang.cookie`` (surrounding whitespace stripped), which is created (mode 0400) when
    it does not exist. Raises :class:`NodeConfigError` for an empty or non-Latin-1 cookie, or a cookie
    file that cannot be read or created.
    """
    if cookie is not None:
        return _check(cookie, "the argument")
    environ = os.environ if env is None else env
    from_env = environ.get(COOKIE_ENV, "")
    if from_env:
        return _check(from_env, f"${COOKIE_ENV}")
    path = cookie_path(home)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return _create(path)
    except OSError as exc:
        raise NodeConfigError(f"cannot read the cookie file {path}: {exc}") from exc
    first = text.splitlines()[0].strip() if text.strip() else b""
    return _check(first, str(path))


def _create(path: Path) -> bytes:
    cookie = "".join(secrets.choice(string.ascii_uppercase) for _ in range(_COOKIE_LENGTH)).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    except FileExistsError:  # created by someone else meanwhile
        return resolve_cookie(env={}, home=path.parent)
    except OSError as exc:
        raise NodeConfigError(f"cannot create the cookie file {path}: {exc}") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(cookie)
    os.chmod(path, 0o400)
    return cookie
