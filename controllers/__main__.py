"""Entry point of ``fma-controllers``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from controllers import app, settings
from crds import log_output

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, configure logging and run both controllers until stopped."""
    parsed = settings.parse_args(sys.argv[1:] if argv is None else argv)
    log_output.configure(parsed.log_level, json_lines=parsed.log_format == "json")
    return app.run(parsed)


if __name__ == "__main__":
    raise SystemExit(main())
