"""Node-side agents: the launcher service, the requester agent and the engine simulator."""

__all__: list[str] = []
