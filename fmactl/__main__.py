"""``kubectl-fma`` / ``python -m fmactl``."""

from __future__ import annotations

import sys

from fmactl import cli

__all__ = ["main"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
