"""The ``sim`` engine: launcher instances that run the engine simulator.

The simulator learns its GPU UUIDs from ``FMA_SIM_GPU_UUIDS`` (it cannot see
UUIDs through ``CUDA_VISIBLE_DEVICES`` indices) so that it can publish its
simulated memory per UUID for the requester agent.
"""

from __future__ import annotations

import json
import logging

import pydantic

from crds import log_output, validation_paths
from launcher import engine_sim, sim_cli, tensor_engine

__all__ = ["ENGINE", "SimEngineRunner"]

logger = logging.getLogger(__name__)


class SimEngineRunner:
    """``engine.Engine`` running ``engine_sim`` in each instance."""

    name = "sim"

    def preload(self) -> None:
        """Everything the simulator needs is already imported with this module."""

    def child_env(self, gpu_uuids: list[str]) -> dict[str, str]:
        return {"FMA_SIM_GPU_UUIDS": json.dumps(gpu_uuids)} if gpu_uuids else {}

    def run(self, argv: list[str]) -> int:
        try:
            sim, unknown = sim_cli.parse(argv)
        except (ValueError, pydantic.ValidationError) as exc:
            log_output.configure("info")
            problem = validation_paths.summary(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
            logger.error("invalid engine options", extra={"error": problem})
            return 2
        log_output.configure(sim.log_level)
        if unknown:
            logger.warning("ignoring engine options the simulator does not model", extra={"options": unknown})
        return tensor_engine.serve(sim) if sim.device != "sim" else engine_sim.serve(sim)


ENGINE = SimEngineRunner()
