"""``python -m crds generate|check``: write or verify the CRD manifests.

``generate`` writes the CRDs derived from the models into ``crds/manifests/`` and
the Helm chart's ``crds/`` folder (or the ``--output`` folders); ``check`` exits
with status 1 and lists the files that differ, for CI and pre-commit.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from crds import manifests

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m crds", description=__doc__)
    parser.add_argument("command", choices=("generate", "check"), help="write the CRDs, or verify them")
    parser.add_argument(
        "--output",
        action="append",
        type=pathlib.Path,
        help="target folder (repeatable); default: crds/manifests and charts/fma/crds",
    )
    args = parser.parse_args(argv)
    directories: list[pathlib.Path] = args.output or [manifests.package_dir(), manifests.chart_dir()]
    if args.command == "generate":
        for path in manifests.write(directories):
            print(f"wrote {path}")
        return 0
    outdated = manifests.stale(directories)
    for path in outdated:
        print(f"out of date: {path} (run 'python -m crds generate')", file=sys.stderr)
    return 1 if outdated else 0


if __name__ == "__main__":
    sys.exit(main())
