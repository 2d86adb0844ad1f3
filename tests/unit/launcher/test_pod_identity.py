"""Finding the launcher's own Pod without ``POD_NAME``/``NAMESPACE`` (launcher.pod_identity)."""

from __future__ import annotations

import base64
import json
import pathlib

import pytest

from launcher import pod_identity
from launcher import settings as settings_mod


def _jwt(claims: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


BOUND = _jwt({"kubernetes.io": {"namespace": "team-a", "pod": {"name": "launcher-x-abcde", "uid": "u"}}})
LEGACY = _jwt({"sub": "system:serviceaccount:team-a:default"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(
            {"pod_name": "p", "namespace": "ns", "token": BOUND, "namespace_file": "nf", "hostname": "h"},
            ("ns", "p", "NAMESPACE", "POD_NAME"),
            id="downward-api-env-wins",
        ),
        pytest.param(
            {"token": BOUND, "namespace_file": "team-a", "hostname": "h"},
            ("team-a", "launcher-x-abcde", "token", "token"),
            id="upstream-style-template-bound-token",
        ),
        pytest.param(
            {"token": LEGACY, "namespace_file": "team-a\n", "hostname": "launcher-x-abcde"},
            ("team-a", "launcher-x-abcde", "namespace file", "hostname"),
            id="legacy-token-namespace-file-and-hostname",
        ),
        pytest.param(
            {"token": "not-a-jwt", "namespace_file": "team-a", "hostname": "h"},
            ("team-a", "h", "namespace file", "hostname"),
            id="garbage-token-ignored",
        ),
        pytest.param(
            {"pod_name": "", "namespace": " ", "token": None, "namespace_file": "ns", "hostname": "h"},
            ("ns", "h", "namespace file", "hostname"),
            id="empty-env-values-are-absent",
        ),
    ],
)
def test_each_half_comes_from_its_first_usable_source(
    given: dict[str, str | None], expected: tuple[str, str, str, str]
) -> None:
    values: dict[str, str | None] = {"pod_name": None, "namespace": None, **given}
    identity = pod_identity.resolve(**values)  # type: ignore[arg-type]  # keys are the parameters
    assert identity is not None
    assert (identity.namespace, identity.name, identity.namespace_source, identity.name_source) == expected


@pytest.mark.parametrize(
    "given",
    [
        pytest.param({"token": LEGACY, "namespace_file": None, "hostname": "h"}, id="no-namespace-anywhere"),
        pytest.param({"token": None, "namespace_file": "ns", "hostname": ""}, id="no-name-anywhere"),
    ],
)
def test_no_identity_when_a_half_is_missing(given: dict[str, str | None]) -> None:
    assert pod_identity.resolve(pod_name=None, namespace=None, **given) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("a.b", id="two-parts"),
        pytest.param("a.!!!.c", id="not-base64"),
        pytest.param(f"a.{base64.urlsafe_b64encode(b'[1]').decode()}.c", id="not-an-object"),
        pytest.param("", id="empty"),
    ],
)
def test_claims_of_something_that_is_not_a_jwt_are_empty(token: str) -> None:
    assert pod_identity.token_claims(token) == {}


def test_discover_reads_the_service_account_folder(tmp_path: pathlib.Path) -> None:
    (tmp_path / "token").write_text(BOUND)
    (tmp_path / "namespace").write_text("other")
    settings = settings_mod.LauncherSettings(service_account_dir=tmp_path, hostname="ignored")
    identity = pod_identity.discover(settings)
    assert identity is not None
    assert (identity.namespace, identity.name) == ("team-a", "launcher-x-abcde")


def test_discover_falls_back_to_the_hostname_setting(tmp_path: pathlib.Path) -> None:
    (tmp_path / "namespace").write_text("team-b")
    settings = settings_mod.LauncherSettings(service_account_dir=tmp_path, hostname="launcher-y-12345")
    identity = pod_identity.discover(settings)
    assert identity is not None
    assert (identity.namespace, identity.name, identity.name_source) == ("team-b", "launcher-y-12345", "hostname")
