#!/usr/bin/env python3
"""What upstream's ``state-change-reflector`` sidecar runs: ``python3 /app/launcher_pod_notifier.py``.

Upstream's dual-pods controller adds that sidecar to every launcher Pod it
builds, with the launcher's own image, so our launcher image must have this
file at ``/app``.  It runs our Pod publisher in sidecar mode
(``launcher.pod_notifier``): the environment upstream gives the sidecar
(``LAUNCHER_BASE_URL``, ``POD_NAME``, ``NAMESPACE``) is all it needs.

This file's folder is taken off the import path first: ``/app`` may also hold
a ``launcher.py`` (upstream's entry-point name), which would hide our
``launcher`` package.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from launcher import pod_notifier  # noqa: E402 - the import path is fixed just above

if __name__ == "__main__":
    sys.exit(pod_notifier.main())
