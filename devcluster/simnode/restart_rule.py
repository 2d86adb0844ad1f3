"""When a container that stopped runs again: the restart policy and crash-loop back-off.

Pure; the Pod runner asks and schedules.  Back-off follows the kubelet: the
first restart is immediate, then 10 s, doubling up to 5 minutes.
"""

from __future__ import annotations

__all__ = ["MAX_BACKOFF_SECONDS", "RESET_AFTER_SECONDS", "backoff_seconds", "should_restart"]

MAX_BACKOFF_SECONDS = 300.0
RESET_AFTER_SECONDS = 2 * MAX_BACKOFF_SECONDS
_FIRST_BACKOFF_SECONDS = 10.0


def should_restart(policy: str, exit_code: int, *, init: bool = False) -> bool:
    """Whether a container that exited with ``exit_code`` is started again under ``policy``.

    Init containers that succeeded never run again; failed ones are retried
    unless the policy is ``Never``.
    """
    if init:
        return exit_code != 0 and policy != "Never"
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def backoff_seconds(restarts_so_far: int, ran_seconds: float = 0.0) -> float:
    """Delay before the next start of a container already restarted ``restarts_so_far`` times.

    A run that lasted at least ``RESET_AFTER_SECONDS`` resets the back-off,
    as the kubelet forgets a container's back-off after that long.
    """
    if restarts_so_far <= 0 or ran_seconds >= RESET_AFTER_SECONDS:
        return 0.0
    return float(min(MAX_BACKOFF_SECONDS, _FIRST_BACKOFF_SECONDS * 2.0 ** (restarts_so_far - 1)))
