"""A real local Kubernetes control plane plus simulated GPU nodes, for the demo and tests.

Test infrastructure: no product package imports it.
"""

__all__: list[str] = []
