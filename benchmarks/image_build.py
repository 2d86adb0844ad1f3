"""`make images` without an engine: cold, sources-changed and warm build times, and the images' sizes.

Three builds into one fresh cache directory (``--cache``, default a new
temporary directory, removed afterwards):

1. cold: an empty cache (Debian base from mmdebstrap, wheels downloaded, both images built);
2. sources changed: another tag, so a new key (what an edited source file
   causes): the cached base and wheels are reused, layers 2 and 3 rebuilt;
3. warm: the same tag again: only the recorded result is read.

Writes ``benchmarks/results/image_build.json`` and prints a table.  Needs
root, mmdebstrap and umoci (``scripts/image-tools.sh``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
import tarfile
import tempfile
from typing import Any

import run_record

from devcluster import image_build

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "image_build.json"


def _layers(archive: pathlib.Path) -> list[int]:
    """Compressed sizes of the image's layers, bottom first (from its manifest)."""
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        digest = index["manifests"][0]["digest"].split(":", 1)[1]
        manifest = json.load(tar.extractfile(f"blobs/sha256/{digest}"))  # type: ignore[arg-type]
    return [int(layer["size"]) for layer in manifest["layers"]]


def _run(name: str, tag: str, cache: pathlib.Path) -> dict[str, Any]:
    result = image_build.build(tag=tag, cache=cache)
    return {
        "build": name,
        "reused": result.reused,
        "seconds": round(result.seconds, 1),
        "images": [
            {
                "name": image.name,
                "digest": image.digest,
                "archive_bytes": image.size_bytes,
                "layer_bytes": _layers(image.archive),
            }
            for image in result.images
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=pathlib.Path, default=None, help="cache directory (default: a new temporary)")
    args = parser.parse_args()
    run_info = run_record.start()
    cache = args.cache or pathlib.Path(tempfile.mkdtemp(prefix="fma-image-bench-"))
    try:
        runs = [_run("cold", "bench-1", cache)]
        runs.append(_run("sources-changed", "bench-2", cache))
        runs.append(_run("warm", "bench-2", cache))
    finally:
        if args.cache is None:
            shutil.rmtree(cache, ignore_errors=True)
    result = {"benchmark": "image_build", "run": run_record.finish(run_info), "builds": runs}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'build':<17}{'seconds':>9}  image sizes (MB, archive)")
    for run in runs:
        sizes = ", ".join(f"{i['name'].rsplit('/', 1)[1]} {i['archive_bytes'] / 1e6:.1f}" for i in run["images"])
        print(f"{run['build']:<17}{run['seconds']:>9.1f}  {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
