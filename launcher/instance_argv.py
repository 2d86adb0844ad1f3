"""The command line an instance runs with: the caller's options, plus the launcher's address when it has one.

An instance listens on the ISC port *at the launcher Pod's IP*
(docs/launcher.md, "How an instance is started").  Engines (vLLM and the
simulator alike) listen on every interface unless told otherwise, which is
harmless in a real Pod but collides where Pods share one network namespace
and differ only by their (loopback) IP, as on the development cluster: two
launchers' instances on the same port would fight over ``0.0.0.0:PORT``.  So when the launcher itself listens on a
specific address and the options name no ``--host``, the instance gets
``--host <that address>``.  The caller's options are echoed back unchanged;
only the argv differs.

Pure; no I/O.
"""

from __future__ import annotations

__all__ = ["WILDCARD_HOSTS", "build", "is_specific"]

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 - these are what we compare against
"""Listen addresses that mean every interface: an instance is then left to its own default."""


def is_specific(host: str) -> bool:
    """Whether ``host`` names one address rather than every interface."""
    return host.strip() not in WILDCARD_HOSTS


def _names_host(argv: list[str]) -> bool:
    return any(arg == "--host" or arg.startswith("--host=") for arg in argv)


def build(options: str, launcher_host: str) -> list[str]:
    """The instance's argv: ``options`` split on whitespace, plus ``--host`` per the rule above."""
    argv = options.split()
    if is_specific(launcher_host) and not _names_host(argv):
        argv += ["--host", launcher_host.strip()]
    return argv
