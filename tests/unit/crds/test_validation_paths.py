"""crds.validation_paths: one way to name a bad field, field paths as users write them."""

from __future__ import annotations

import pydantic
import pytest

from crds import validation_paths


class _Inner(pydantic.BaseModel):
    count: int


class _Outer(pydantic.BaseModel):
    items: list[_Inner]


def _error(value: object) -> pydantic.ValidationError:
    with pytest.raises(pydantic.ValidationError) as caught:
        _Outer.model_validate(value)
    return caught.value


def test_paths_name_fields_with_dots_and_indices_in_brackets() -> None:
    exc = _error({"items": [{"count": 1}, {"count": "x"}]})
    assert validation_paths.problems(exc) == [("items[1].count", exc.errors()[0]["msg"])]
    assert validation_paths.summary(exc, "spec").startswith("spec.items[1].count: ")
    assert validation_paths.format_path([0, "a"]) == "[0].a"


def test_a_whole_object_problem_has_no_path() -> None:
    exc = _error("not an object")
    assert validation_paths.summary(exc) == exc.errors()[0]["msg"]
