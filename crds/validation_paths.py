"""Turning a pydantic ``ValidationError`` into ``(field path, message)`` problems.

Every parse in this package reports the failing field by its JSON path
(``spec.countForLauncher[1].launcherCount``), because that is the name users see
in their YAML and in apiserver messages; pydantic's raw ``loc`` tuples are not.

Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import pydantic

from crds import errors

__all__ = ["format_path", "problems", "summary"]


def format_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """Return ``loc`` as a JSON path: names joined by ``.``, list indices as ``[i]``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def problems(exc: pydantic.ValidationError, prefix: str = "") -> list[errors.Problem]:
    """Return one ``(path, message)`` per error in ``exc``, paths below ``prefix``."""
    return [(format_path(item["loc"], prefix), item["msg"]) for item in exc.errors(include_url=False)]


def summary(exc: pydantic.ValidationError, prefix: str = "") -> str:
    """Return all problems of ``exc`` as one ``path: message; ...`` line."""
    return "; ".join(f"{path}: {message}" if path else message for path, message in problems(exc, prefix))
