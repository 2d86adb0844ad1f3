"""Entry point of `fma-certs`."""

import sys

__all__ = ["main"]


def main() -> int:
    """Report that this process is not implemented yet."""
    print("fma-certs: not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
