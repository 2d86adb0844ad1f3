"""The Pod metadata contract: every annotation, label and finalizer key FMA uses.

Every package reads and writes Pod metadata through these names
(docs/protocol.md, "Annotations", "Labels" and "Finalizers"), so a key is spelt
exactly once.  The values that have a structure of their
own are parsed and formatted by the modules named in each docstring
(``binding_record``, ``requester_status``, ``routing_metadata``, ``accelerators``,
``launcher_inventory``, ``vllm_config_annotation``, ``ports``).

Pure constants; no I/O.
"""

from __future__ import annotations

__all__ = [
    "ACCELERATORS_ANNOTATION",
    "ACTUATION_ANNOTATION",
    "ACTUATION_DIRECT",
    "ADMIN_PORT_ANNOTATION",
    "BOUND_LAUNCHER_ANNOTATIONS",
    "COMPONENT_LABEL",
    "COMPONENT_LAUNCHER",
    "CONFIG_KEY_ANNOTATION",
    "CONVERTED_ANNOTATION",
    "CONVERTED_V1",
    "DUAL_LABEL",
    "IMMUTABLE_ANNOTATIONS",
    "IMMUTABLE_LABELS",
    "INFERENCE_SERVER_CONFIG_ANNOTATION",
    "INSTANCES_ANNOTATION",
    "INSTANCE_ID_ANNOTATION",
    "INSTANCE_LABEL",
    "ISC_ROUTING_METADATA_ANNOTATION",
    "LAUNCHER_BASED_ANNOTATION",
    "LAUNCHER_CONFIG_HASH_ANNOTATION",
    "LAUNCHER_CONFIG_NAME_LABEL",
    "LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION",
    "LAUNCHER_STUCK_LABEL",
    "NODE_NAME_LABEL",
    "NOMINAL_ANNOTATION",
    "NOMINATED_NODE_ANNOTATION",
    "NOMINATE_GATE",
    "PREFIX",
    "PROVIDER_FINALIZER",
    "PROVIDER_LABELS_ANNOTATION",
    "REQUESTER_ANNOTATION",
    "REQUESTER_FINALIZER",
    "RESERVED_ROUTING_PREFIXES",
    "SERVER_PATCH_ANNOTATION",
    "SERVER_PORT_ANNOTATION",
    "SLEEPING_FALSE",
    "SLEEPING_LABEL",
    "SLEEPING_TRUE",
    "STATUS_ANNOTATION",
    "STUCK_TRUE",
    "VLLM_CONFIG_ANNOTATION",
    "VLLM_INSTANCE_SIGNATURE_ANNOTATION",
]

PREFIX = "dual-pods.llm-d.ai/"
"""The prefix of every FMA annotation, label and finalizer key."""

# --- annotations (docs/protocol.md, "Annotations") ------------------------------------

SERVER_PATCH_ANNOTATION = PREFIX + "server-patch"
"""On a requester (direct mode): the provider patch template. Mutually exclusive with the ISC key."""

INFERENCE_SERVER_CONFIG_ANNOTATION = PREFIX + "inference-server-config"
"""On a requester: the name of an InferenceServerConfig; its presence selects launcher mode (empty is an error)."""

ADMIN_PORT_ANNOTATION = PREFIX + "admin-port"
"""On a requester: the decimal SPI port (default 8081); read it with ``ports.admin_port``."""

STATUS_ANNOTATION = PREFIX + "status"
"""On a requester, written by the DPC: ``{"Errors":[...]}``; see ``requester_status``. VAP-protected."""

ACCELERATORS_ANNOTATION = PREFIX + "accelerators"
"""On requesters and direct providers: GPU UUIDs comma-joined in SPI order; see ``accelerators``."""

REQUESTER_ANNOTATION = PREFIX + "requester"
"""On providers: the binding record ``"<uid> <name>"``; see ``binding_record``. VAP-protected."""

NOMINAL_ANNOTATION = PREFIX + "nominal"
"""On direct providers: the identity hash (``hashes.nominal_hash``); kept after unbind for sleeper reuse."""

INSTANCE_ID_ANNOTATION = PREFIX + "instance-id"
"""On a bound launcher: the instance ID of the bound instance (``hashes.instance_id``). VAP-protected."""

SERVER_PORT_ANNOTATION = PREFIX + "server-port"
"""On a bound launcher: the decimal ISC port of the bound instance (``ports.parse_port``). VAP-protected."""

VLLM_CONFIG_ANNOTATION = PREFIX + "vllm-config"
"""On a bound launcher: compact JSON of the VllmConfig sent to create the instance. VAP-protected."""

ISC_ROUTING_METADATA_ANNOTATION = PREFIX + "isc-routing-metadata"
"""On a bound launcher: the routing metadata committed at bind time; see ``routing_metadata``. VAP-protected."""

LAUNCHER_CONFIG_HASH_ANNOTATION = PREFIX + "launcher-config-hash"
"""On launchers: the node-specific template hash (``hashes.launcher_config_hash``)."""

LAUNCHER_POPULATOR_TEMPLATE_HASH_ANNOTATION = PREFIX + "launcher-populator-template-hash"
"""On launchers: the node-independent template hash (``hashes.launcher_template_hash``)."""

VLLM_INSTANCE_SIGNATURE_ANNOTATION = PREFIX + "vllm-instance-signature"
"""On launchers, written by the launcher: a hex SHA-256 that only exists to cause Pod update events."""

LAUNCHER_BASED_ANNOTATION = PREFIX + "launcher-based"
"""Reserved by upstream and unused: never write it. Named here so nobody reuses the key by accident."""

BOUND_LAUNCHER_ANNOTATIONS: tuple[str, ...] = (
    INSTANCE_ID_ANNOTATION,
    SERVER_PORT_ANNOTATION,
    VLLM_CONFIG_ANNOTATION,
    ISC_ROUTING_METADATA_ANNOTATION,
)
"""The four annotations a launcher carries only while bound; all are removed on unbind."""

# --- our extensions (the "ours" rows of docs/protocol.md, "Annotations") --------------

ACTUATION_ANNOTATION = PREFIX + "actuation"
"""On a user Pod: ``direct`` asks the webhook to turn the Pod's own server container into a direct requester."""

ACTUATION_DIRECT = "direct"
"""The one defined value of ``ACTUATION_ANNOTATION``."""

PROVIDER_LABELS_ANNOTATION = PREFIX + "provider-labels"
"""On a user Pod (direct mode): comma-separated label keys that the webhook moves onto the provider."""

CONVERTED_ANNOTATION = PREFIX + "converted"
"""On a requester, written by the webhook: ``v1`` once converted, so reinvocation leaves the Pod unchanged."""

CONVERTED_V1 = "v1"
"""The value of ``CONVERTED_ANNOTATION`` written by this version of the webhook."""

INSTANCES_ANNOTATION = PREFIX + "instances"
"""On launchers, written by the launcher: its instance inventory; see ``launcher_inventory``."""

CONFIG_KEY_ANNOTATION = PREFIX + "config-key"
"""On sleeping direct providers: the config key (``hashes.direct_config_key``), so the extender can match them."""

NOMINATED_NODE_ANNOTATION = PREFIX + "nominated-node"
"""On a requester, written by the webhook (``nominate`` on): the certain-hot node chosen at admission.  With
``nominate: gate`` the controllers copy it into ``status.nominatedNodeName`` before lifting ``NOMINATE_GATE``; with
``nominate: plugin`` (no gate) FMA's kube-scheduler build restricts the first scheduling attempt to it."""

# --- scheduling gates (ours) ----------------------------------------------------------

NOMINATE_GATE = PREFIX + "nominate"
"""A ``spec.schedulingGates`` name, written by the webhook next to ``NOMINATED_NODE_ANNOTATION``; the controllers
set ``status.nominatedNodeName`` and then remove only this gate (``controllers.nomination``)."""

# --- labels (docs/protocol.md, "Labels") ----------------------------------------------

DUAL_LABEL = PREFIX + "dual"
"""On requesters and providers while bound: the name of the other Pod. VAP-protected."""

INSTANCE_LABEL = PREFIX + "instance"
"""On a requester bound to a launcher: the instance ID."""

SLEEPING_LABEL = PREFIX + "sleeping"
"""On providers: ``"true"`` or ``"false"`` (``SLEEPING_TRUE``/``SLEEPING_FALSE``)."""

SLEEPING_TRUE = "true"
"""``SLEEPING_LABEL`` value of a provider whose engine is asleep (or that has no bound instance)."""

SLEEPING_FALSE = "false"
"""``SLEEPING_LABEL`` value of a provider whose engine is awake."""

LAUNCHER_CONFIG_NAME_LABEL = PREFIX + "launcher-config-name"
"""On launchers: the LauncherConfig name; its presence makes a Pod a launcher. VAP-protected."""

NODE_NAME_LABEL = PREFIX + "node-name"
"""On launchers: the node the launcher is pinned to."""

COMPONENT_LABEL = "app.kubernetes.io/component"
"""The well-known component label; launchers carry ``COMPONENT_LAUNCHER``."""

COMPONENT_LAUNCHER = "launcher"
"""The value of ``COMPONENT_LABEL`` on launcher Pods."""

LAUNCHER_STUCK_LABEL = PREFIX + "launcher-stuck"
"""On an unbound launcher: ``"true"`` while the populator considers it stuck (docs/populator.md, "How it works")."""

STUCK_TRUE = "true"
"""The value of ``LAUNCHER_STUCK_LABEL``."""

# --- finalizers (docs/protocol.md, "Finalizers") --------------------------------------

PROVIDER_FINALIZER = PREFIX + "provider"
"""On a bound provider: keeps an exogenously deleted provider visible until the DPC relayed the deletion."""

REQUESTER_FINALIZER = PREFIX + "requester"
"""On a requester: keeps it (and its GPU accounting) alive until its engine is asleep and it is unbound."""

# --- groups of keys -------------------------------------------------------------------

IMMUTABLE_ANNOTATIONS: tuple[str, ...] = (
    REQUESTER_ANNOTATION,
    STATUS_ANNOTATION,
    INSTANCE_ID_ANNOTATION,
    SERVER_PORT_ANNOTATION,
    VLLM_CONFIG_ANNOTATION,
    ISC_ROUTING_METADATA_ANNOTATION,
)
"""Annotations that ``fma-immutable-fields`` freezes for everyone but the controllers.

See docs/protocol.md, "Admission".
"""

IMMUTABLE_LABELS: tuple[str, ...] = (DUAL_LABEL, LAUNCHER_CONFIG_NAME_LABEL)
"""Labels that ``fma-immutable-fields`` freezes for everyone but the controllers (docs/protocol.md, "Admission")."""

RESERVED_ROUTING_PREFIXES: tuple[str, ...] = (PREFIX, "kubernetes.io/", "k8s.io/")
"""Key prefixes an ISC's routing labels and annotations must not use (docs/api.md, "InferenceServerConfig")."""
