"""Entry points of `fma-launcher`, `fma-requester` and `fma-engine-sim`."""

import sys

__all__ = ["engine_sim_main", "launcher_main", "requester_main"]


def _not_yet(name: str) -> int:
    print(f"{name}: not implemented yet", file=sys.stderr)
    return 2


def launcher_main() -> int:
    """Run the launcher service."""
    return _not_yet("fma-launcher")


def requester_main() -> int:
    """Run the requester agent."""
    return _not_yet("fma-requester")


def engine_sim_main() -> int:
    """Run the engine simulator."""
    return _not_yet("fma-engine-sim")


if __name__ == "__main__":
    raise SystemExit(launcher_main())
