"""The kube-scheduler extender that places requesters where sleeping instances wait.
"""

__all__: list[str] = []
