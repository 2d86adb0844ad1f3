"""Pod IP assignment inside a node's loopback block (see ``fleet``).

A Pod keeps the address it already reports (so a restarted simnode adopts
it); otherwise it gets the lowest free host number 2..254 of its node's
block.  Pure.
"""

from __future__ import annotations

from collections.abc import Collection

from devcluster.simnode import errors

__all__ = ["assign", "in_block"]


def in_block(address: str | None, block: tuple[int, int]) -> bool:
    """Whether ``address`` is a Pod address of the node block ``block``."""
    if not address:
        return False
    parts = address.split(".")
    if len(parts) != 4 or parts[0] != "127":
        return False
    try:
        a, b, c = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return False
    return (a, b) == block and 2 <= c <= 254


def assign(block: tuple[int, int], current: str | None, in_use: Collection[str]) -> str:
    """The Pod's address: ``current`` when valid and not taken by another Pod, else the lowest free one."""
    if in_block(current, block) and current not in in_use:
        assert current is not None
        return current
    for host in range(2, 255):
        candidate = f"127.{block[0]}.{block[1]}.{host}"
        if candidate not in in_use:
            return candidate
    raise errors.PodConfigError("FailedCreatePodSandBox", f"no free Pod address in 127.{block[0]}.{block[1]}.0/24")
