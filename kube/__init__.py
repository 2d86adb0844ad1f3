"""The one adapter over the official kubernetes client.

Client construction, typed API errors, watch-fed caches, leader election and
Events live here so that no other product package imports ``kubernetes``.
Objects cross this boundary as raw JSON dicts; each package parses the
fields it needs with its own models.
"""

from kube import cache, client, errors, events, leader_election, resources
from kube.cache import WatchCache, object_key
from kube.client import Client, connect
from kube.events import EventRecorder
from kube.leader_election import LeaderElector

__all__ = [
    "Client",
    "EventRecorder",
    "LeaderElector",
    "WatchCache",
    "cache",
    "client",
    "connect",
    "errors",
    "events",
    "leader_election",
    "object_key",
    "resources",
]
