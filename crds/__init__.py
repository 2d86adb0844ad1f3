"""The FMA API: custom-resource models, Pod metadata keys and generated CRD manifests.

This package imports none of our other packages; every other package uses it.
"""

from crds import (
    accelerators,
    binding_record,
    decoding,
    errors,
    go_yaml,
    hashes,
    inference_server_config,
    keys,
    kinds,
    launcher_config,
    launcher_inventory,
    launcher_population_policy,
    log_output,
    manifest_schema,
    manifests,
    metadata_rules,
    names,
    pod_template_schema,
    ports,
    quantity,
    requester_status,
    routing_metadata,
    schema_base,
    selector,
    status,
    validation_paths,
    vllm_config_annotation,
)
from crds.decoding import CustomResource, decode, decode_any
from crds.errors import CrdsError, InvalidAnnotation, InvalidObject
from crds.hashes import config_key, direct_config_key, instance_id
from crds.inference_server_config import InferenceServerConfig, ModelServerConfig
from crds.launcher_config import LauncherConfig
from crds.launcher_population_policy import LauncherPopulationPolicy

__all__ = [
    "CrdsError",
    "CustomResource",
    "InferenceServerConfig",
    "InvalidAnnotation",
    "InvalidObject",
    "LauncherConfig",
    "LauncherPopulationPolicy",
    "ModelServerConfig",
    "accelerators",
    "binding_record",
    "config_key",
    "decode",
    "decode_any",
    "decoding",
    "direct_config_key",
    "errors",
    "go_yaml",
    "hashes",
    "inference_server_config",
    "instance_id",
    "keys",
    "kinds",
    "launcher_config",
    "launcher_inventory",
    "launcher_population_policy",
    "log_output",
    "manifest_schema",
    "manifests",
    "metadata_rules",
    "names",
    "pod_template_schema",
    "ports",
    "quantity",
    "requester_status",
    "routing_metadata",
    "schema_base",
    "selector",
    "status",
    "validation_paths",
    "vllm_config_annotation",
]
