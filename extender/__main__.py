"""Entry point of `fma-extender`."""

import sys

__all__ = ["main"]


def main() -> int:
    """Report that this process is not implemented yet."""
    print("fma-extender: not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
