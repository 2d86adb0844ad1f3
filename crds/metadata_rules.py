"""Kubernetes' syntax rules for label and annotation keys and label values.

ISC routing metadata is copied onto launcher Pods (docs/api.md,
"InferenceServerConfig"), so a key or value the apiserver would refuse must be
caught before it reaches a Pod write.
The rules are Kubernetes' own (qualified names, label values) plus FMA's reserved
prefixes.  They return messages instead of raising so that callers can collect
every problem of an object at once.

Pure; no I/O.
"""

from __future__ import annotations

import re

from crds import keys

__all__ = ["annotation_key_problems", "label_key_problems", "label_value_problems", "routing_key_problems"]

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_MAX_NAME = 63
_MAX_PREFIX = 253
_MAX_LABEL_VALUE = 63


def _qualified_name_problems(key: str) -> list[str]:
    prefix, slash, name = key.rpartition("/")
    problems: list[str] = []
    if slash:
        if not prefix:
            problems.append(f"key {key!r}: the prefix before '/' must not be empty")
        elif len(prefix) > _MAX_PREFIX:
            problems.append(f"key {key!r}: the prefix must be at most {_MAX_PREFIX} characters")
        elif not _DNS_SUBDOMAIN.match(prefix):
            problems.append(f"key {key!r}: the prefix must be a lowercase DNS subdomain")
        if "/" in prefix:
            problems.append(f"key {key!r}: at most one '/' is allowed")
    if not name:
        problems.append(f"key {key!r}: the name part must not be empty")
    elif len(name) > _MAX_NAME:
        problems.append(f"key {key!r}: the name part must be at most {_MAX_NAME} characters")
    elif not _NAME.match(name):
        problems.append(
            f"key {key!r}: the name part must consist of alphanumerics, '-', '_' or '.', "
            "and start and end with an alphanumeric"
        )
    return problems


def label_key_problems(key: str) -> list[str]:
    """Return why ``key`` is not a valid label key (empty when it is)."""
    return _qualified_name_problems(key)


def annotation_key_problems(key: str) -> list[str]:
    """Return why ``key`` is not a valid annotation key; Kubernetes checks these case-insensitively."""
    return _qualified_name_problems(key.lower())


def label_value_problems(key: str, value: str) -> list[str]:
    """Return why ``value`` is not a valid value for label ``key`` (empty when it is)."""
    if len(value) > _MAX_LABEL_VALUE:
        return [f"label {key!r}: value {value!r} must be at most {_MAX_LABEL_VALUE} characters"]
    if not _LABEL_VALUE.match(value):
        return [
            f"label {key!r}: value {value!r} must be empty or consist of alphanumerics, '-', '_' or '.', "
            "and start and end with an alphanumeric"
        ]
    return []


def routing_key_problems(key: str) -> list[str]:
    """Return why ``key`` may not be used as an ISC routing label or annotation key: FMA's reserved prefixes."""
    for reserved in keys.RESERVED_ROUTING_PREFIXES:
        if key.startswith(reserved):
            return [f"key {key!r} uses the reserved prefix {reserved!r}"]
    return []
