"""Entry point of `fma-webhook`."""

import sys

__all__ = ["main"]


def main() -> int:
    """Report that this process is not implemented yet."""
    print("fma-webhook: not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
