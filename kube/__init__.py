"""The one adapter over the official kubernetes client.

Client construction, typed API errors, watch-fed caches, leader election and
Events live here so that no other product package imports kubernetes.
"""

__all__: list[str] = []
