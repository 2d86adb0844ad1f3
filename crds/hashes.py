"""Identity hashes: instance ID, config key and the launcher/provider template hashes.

Every FMA identity is a SHA-256 over a precisely defined byte string
(docs/protocol.md, "Identity hashes").  Controllers, the extender and the launcher
must compute them identically, across processes and versions, so they are
defined once, here:

- instance ID ``"I" + b64url(SHA-256(Y + ";gpus=" + U)) + "i"``, where Y is the
  ISC ``modelServerConfig`` rendered like Go's ``sigs.k8s.io/yaml`` (``go_yaml``,
  checked against vectors produced by Go) and U the GPU UUIDs in SPI order;
- config key ``"C" + b64url(SHA-256(Y)) + "c"``: the same without GPUs, so that
  requesters and sleeping instances of one configuration match on any GPUs;
- ``nominal``, ``launcher-populator-template-hash`` and ``launcher-config-hash``
  over canonical JSON (sorted keys, no whitespace, UTF-8).

Pure; no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from crds import go_yaml, inference_server_config

__all__ = [
    "canonical_json",
    "config_key",
    "direct_config_key",
    "instance_id",
    "launcher_config_hash",
    "launcher_template_hash",
    "model_server_yaml",
    "nominal_hash",
]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode("ascii").rstrip("=")


def _b64std(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii").rstrip("=")


def canonical_json(document: Any) -> bytes:
    """Return ``document`` as canonical JSON: keys sorted by code point, no whitespace, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def model_server_yaml(config: inference_server_config.ModelServerConfig) -> bytes:
    """Return Y: ``config`` as Go's ``sigs.k8s.io/yaml.Marshal`` renders upstream's struct.

    Empty optional fields are omitted, as Go's ``omitempty`` does.
    """
    return go_yaml.marshal(config.go_document()).encode("utf-8")


def instance_id(config: inference_server_config.ModelServerConfig, gpu_uuids: Sequence[str]) -> str:
    """Return the 45-character instance ID of ``config`` on ``gpu_uuids`` (order matters)."""
    return "I" + _b64url(model_server_yaml(config) + b";gpus=" + ",".join(gpu_uuids).encode("utf-8")) + "i"


def config_key(config: inference_server_config.ModelServerConfig) -> str:
    """Return the launcher-mode config key: the instance ID's hash without the GPUs."""
    return "C" + _b64url(model_server_yaml(config)) + "c"


def direct_config_key(nominal_pod: Mapping[str, Any]) -> str:
    """Return the direct-mode config key of the nominal provider Pod before node and GPU specialisation."""
    return "C" + _b64url(canonical_json(nominal_pod)) + "c"


def nominal_hash(patched_pod: Mapping[str, Any], gpu_indices: Sequence[int], node: str) -> str:
    """Return the ``nominal`` annotation: b64std(SHA-256(JSON + ";gpus=" + indices + ";node=" + node))."""
    indices = ",".join(str(index) for index in gpu_indices)
    return _b64std(canonical_json(patched_pod) + f";gpus={indices};node={node}".encode())


def launcher_template_hash(node_independent_pod: Mapping[str, Any]) -> str:
    """Return ``launcher-populator-template-hash`` of the node-independent launcher Pod.

    See docs/protocol.md, "Identity hashes".
    """
    return _b64std(canonical_json(node_independent_pod))


def launcher_config_hash(template_hash: str, node: str) -> str:
    """Return ``launcher-config-hash``: b64std(SHA-256(templateHash + ";node=" + node))."""
    return _b64std(f"{template_hash};node={node}".encode())
