"""The mutating admission webhook that turns annotated Pods into server-requesting Pods.
"""

__all__: list[str] = []
