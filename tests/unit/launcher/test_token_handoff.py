"""``token_handoff``: the token travels through a pipe, and the descriptor's variable is removed."""

from __future__ import annotations

import os

import pytest

from launcher import token_handoff


def test_take_fd_removes_the_variable_and_read_fd_closes_the_pipe() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"  s3cret\n")
    os.close(write_end)
    environ = {"FMA_LAUNCHER_TOKEN_FD": str(read_end), "OTHER": "x"}
    fd = token_handoff.take_fd(environ)
    assert fd == read_end
    assert environ == {"OTHER": "x"}
    assert not os.get_inheritable(fd)
    assert token_handoff.read_fd(fd) == "s3cret"
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)


@pytest.mark.parametrize("value", [None, "", "x1", "-3"])
def test_take_fd_without_a_usable_descriptor(value: str | None) -> None:
    environ = {} if value is None else {"FMA_LAUNCHER_TOKEN_FD": value}
    assert token_handoff.take_fd(environ) is None


def test_no_token_means_no_reexec() -> None:
    token_handoff.reexec_without_token({"PATH": "/bin"}, ["never-run"])  # returns: nothing to move


def test_a_token_too_long_to_hand_over_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than"):
        token_handoff.reexec_without_token({"FMA_LAUNCHER_TOKEN": "x" * 20_000}, ["never-run"])
