"""``python -m crds generate|check|openapi``: write or verify the CRD manifests and their PodSpec source.

``generate`` writes the CRDs derived from the models into ``crds/manifests/`` and
the Helm chart's ``crds/`` folder (or the ``--output`` folders); ``check`` exits
with status 1 and lists the files that differ, for CI and pre-commit.
``openapi --input FILE --version V`` trims the apiserver's ``/openapi/v3/api/v1``
document (saved by ``kubectl get --raw /openapi/v3/api/v1 > FILE``) into
``crds/openapi/core_v1_podtemplatespec.json``, the source of the
LauncherConfig's Pod template schema; run ``generate`` after it.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from crds import manifests, pod_template_schema

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m crds", description=__doc__)
    parser.add_argument(
        "command", choices=("generate", "check", "openapi"), help="write the CRDs, verify them, or trim OpenAPI"
    )
    parser.add_argument("--input", type=pathlib.Path, help="openapi: the saved /openapi/v3/api/v1 document")
    parser.add_argument("--version", help="openapi: the apiserver's version (kubectl version), e.g. v1.35.4")
    parser.add_argument(
        "--output",
        action="append",
        type=pathlib.Path,
        help="target folder (repeatable); default: crds/manifests and charts/fma/crds",
    )
    args = parser.parse_args(argv)
    if args.command == "openapi":
        if args.input is None or not args.version:
            parser.error("openapi needs --input and --version")
        document = json.loads(args.input.read_text(encoding="utf-8"))
        source = pod_template_schema.trim(document, pod_template_schema.source_label(args.version))
        print(f"wrote {pod_template_schema.write_source(source)}")
        return 0
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
