"""Shared test configuration: the development-cluster fixtures and the ``gpu`` marker's rule."""

from __future__ import annotations

import os
import pathlib

import pytest

pytest_plugins = ["devcluster.pytest_plugin", "devcluster.simnode.pytest_fixtures"]


def _has_nvidia_gpu() -> bool:
    return pathlib.Path("/dev/nvidia0").exists() or bool(os.environ.get("FMA_ASSUME_GPU"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` need an NVIDIA GPU: they are skipped, visibly, where there is none."""
    if _has_nvidia_gpu():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (none here); run on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
