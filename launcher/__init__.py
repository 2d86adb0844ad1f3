"""Node-side agents: the launcher service, the requester agent and the engine simulator.

Other packages talk to these over HTTP only (docs/protocol.md, "Requester
SPI", "Launcher API" and "Engine calls"), so the package exports nothing.  Module map:

- launcher service: ``launcher_server`` (process wiring), ``launcher_app``
  (HTTP API), ``request_guard`` (body cap with strict JSON, bearer auth),
  ``env_policy`` (code-loading env names), ``token_handoff`` (the token
  kept out of instances), ``process_table``
  (instances), ``event_log`` (revisions, watch), ``log_range``, ``schemas``,
  ``zygote`` and ``spawner`` (the preloaded parent), ``instance_argv``,
  ``engine`` with ``sim_engine`` and ``vllm_engine``, ``gpu_table``,
  ``nvml``, ``inventory`` (what is published) and ``pod_publisher`` (the
  in-process Pod publisher), ``apiserver`` (plain HTTPS to the apiserver),
  ``launcher_metrics``;
- requester agent: ``requester_server``, ``requester_app``, ``gpu_discovery``;
- engine simulator: ``engine_sim``, ``sim_cli``, ``sim_model``, ``sim_usage``, and its
  torch-backed mode (``--device cuda|cpu``): ``tensor_engine``, ``tensor_weights``;
- shared: ``settings``, ``errors`` (log output is ``crds.log_output``).
"""

__all__: list[str] = []
