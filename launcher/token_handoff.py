"""Keeping the launcher's bearer token out of every instance.

Kubernetes hands the token to the launcher as ``FMA_LAUNCHER_TOKEN`` (a
``secretKeyRef``), so it sits in the process's *initial* environment block,
the memory ``/proc/<pid>/environ`` reads.  ``os.environ.clear()`` does not
touch that block, and every process forked from the launcher (the preloaded
parent, hence every instance) inherits a copy of it.  So the launcher moves
the token out before it forks anything: when the variable is set, it
re-executes itself with an environment that lacks it and hands the token over
through a pipe (``FMA_LAUNCHER_TOKEN_FD``).  The preloaded parent closes that
pipe first thing, and the token is read only after the parent was forked, so
an instance can find the token neither in its environment nor in its memory.

The token file (``--auth-token-file``) is read after the fork as well; that
file stays readable by instances, which run as the same user in the same
container, so the environment variable is the recommended path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping, Sequence

__all__ = ["TOKEN_ENV", "TOKEN_FD_ENV", "read_fd", "reexec_without_token", "take_fd"]

TOKEN_ENV = "FMA_LAUNCHER_TOKEN"  # noqa: S105 - the variable's name, not a secret
TOKEN_FD_ENV = "FMA_LAUNCHER_TOKEN_FD"  # noqa: S105 - the variable's name, not a secret
_MAX_TOKEN_BYTES = 16 * 1024


def reexec_without_token(environ: MutableMapping[str, str], argv: Sequence[str]) -> None:
    """If ``environ`` holds the token, re-execute ``argv`` without it; returns only when it does not.

    Raises ``ValueError`` for a token too long to hand over (over 16 KiB).
    """
    token = environ.get(TOKEN_ENV)
    if token is None:
        return
    data = token.encode()
    if len(data) > _MAX_TOKEN_BYTES:
        raise ValueError(f"{TOKEN_ENV} is longer than {_MAX_TOKEN_BYTES} bytes")
    read_end, write_end = os.pipe()
    os.write(write_end, data)  # fits in the pipe buffer: no reader needed yet
    os.close(write_end)
    os.set_inheritable(read_end, True)
    env = {k: v for k, v in environ.items() if k != TOKEN_ENV}
    env[TOKEN_FD_ENV] = str(read_end)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(argv), env)  # noqa: S606 - re-executing ourselves, argv as we were started


def take_fd(environ: MutableMapping[str, str]) -> int | None:
    """Remove ``FMA_LAUNCHER_TOKEN_FD`` from ``environ`` and return the descriptor, made non-inheritable."""
    value = environ.pop(TOKEN_FD_ENV, None)
    if value is None or not value.isdigit():
        return None
    fd = int(value)
    try:
        os.set_inheritable(fd, False)
    except OSError:
        return None
    return fd


def read_fd(fd: int) -> str | None:
    """Read the whole token from ``fd`` and close it; None when it is empty."""
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode().strip() or None
