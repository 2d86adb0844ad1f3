"""A Pod's volumes as directories on the host, ready to be bind-mounted.

Each volume becomes ``POD_DIR/volumes/NAME``: emptyDir is an empty
directory, configMap/secret/downwardAPI get one file per key or item, and a
projected volume combines its sources, including a service-account token
from the TokenRequest API (bound to the Pod, refreshed at 80 % of its
lifetime, like the kubelet).  Files are replaced atomically so a reader
never sees half a token.

Sources are looked up through functions passed in; a missing non-optional
source raises ``VolumeNotReady`` and the Pod runner retries.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import pathlib
import shutil
from collections.abc import Callable, Mapping, Sequence

from devcluster.simnode import environment, errors, pod

__all__ = [
    "ObjectLookup",
    "Sources",
    "TokenFile",
    "decode_secret",
    "materialize",
    "refresh_token",
    "resync",
    "write_file",
]

ObjectLookup = Callable[[str], Mapping[str, str] | None]
"""Returns a ConfigMap's data (or a Secret's decoded data) by name, or None."""

TokenRequester = Callable[[str, str | None, int], tuple[str, float]]
"""(serviceAccount, audience, expirationSeconds) → (token, seconds it is valid)."""


@dataclasses.dataclass(frozen=True)
class Sources:
    """Where volume contents come from."""

    config_maps: ObjectLookup
    secrets: ObjectLookup
    request_token: TokenRequester
    facts: environment.PodFacts


@dataclasses.dataclass
class TokenFile:
    """A token file to refresh; ``refresh_at`` is a ``time.time()`` value."""

    path: pathlib.Path
    service_account: str
    audience: str | None
    expiration_seconds: int
    mode: int
    refresh_at: float = 0.0


def write_file(path: pathlib.Path, content: str | bytes, mode: int) -> None:
    """Write ``content`` to ``path`` atomically with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content.encode() if isinstance(content, str) else content)
    tmp.chmod(mode)
    os.replace(tmp, path)


def _project_keys(
    directory: pathlib.Path,
    data: Mapping[str, str | bytes] | None,
    items: Sequence[pod.KeyToPath],
    *,
    what: str,
    optional: bool,
    mode: int,
) -> None:
    if data is None:
        if optional:
            return
        raise errors.VolumeNotReady(f"{what} not found")
    if not items:
        for key, value in data.items():
            write_file(directory / key, value, mode)
        return
    for item in items:
        if item.key not in data:
            if optional:
                continue
            raise errors.VolumeNotReady(f"{what} has no key {item.key!r}")
        write_file(directory / item.path, data[item.key], item.mode if item.mode is not None else mode)


def _downward(
    directory: pathlib.Path,
    the_pod: pod.Pod,
    projection: pod.DownwardApiProjection,
    facts: environment.PodFacts,
    mode: int,
) -> None:
    for item in projection.items:
        if item.field_ref is not None:
            value = environment.field_value(the_pod, facts, item.field_ref.field_path)
        elif item.resource_field_ref is not None:
            value = environment.resource_value(the_pod, facts, the_pod.spec.containers[0], item.resource_field_ref)
        else:
            continue
        write_file(directory / item.path, value, item.mode if item.mode is not None else mode)


def refresh_token(token: TokenFile, sources: Sources, now: float) -> None:
    """Request a fresh token, write it and schedule the next refresh at 80 % of its lifetime."""
    value, valid_seconds = sources.request_token(token.service_account, token.audience, token.expiration_seconds)
    write_file(token.path, value, token.mode)
    token.refresh_at = now + 0.8 * max(60.0, valid_seconds)


def _secret_data(sources: Sources, name: str) -> Mapping[str, str] | None:
    return sources.secrets(name)


def materialize(
    the_pod: pod.Pod, volume: pod.Volume, directory: pathlib.Path, sources: Sources, now: float
) -> list[TokenFile]:
    """Fill ``directory`` with the volume's contents; returns the token files to refresh.

    Raises ``VolumeNotReady`` when a source is missing and ``PodConfigError``
    for an unsupported downward-API field.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tokens: list[TokenFile] = []
    if volume.empty_dir is not None:
        directory.chmod(0o777)  # as the kubelet makes it: writable by a container's non-root user (image mode)
    if volume.config_map is not None:
        source = volume.config_map
        mode = source.default_mode if source.default_mode is not None else 0o644
        _project_keys(
            directory,
            sources.config_maps(source.name),
            source.items,
            what=f"configmap {source.name!r}",
            optional=bool(source.optional),
            mode=mode,
        )
    elif volume.secret is not None:
        secret = volume.secret
        name = secret.secret_name or secret.name
        mode = secret.default_mode if secret.default_mode is not None else 0o644
        _project_keys(
            directory,
            _secret_data(sources, name),
            secret.items,
            what=f"secret {name!r}",
            optional=bool(secret.optional),
            mode=mode,
        )
    elif volume.downward_api is not None:
        mode = volume.downward_api.default_mode if volume.downward_api.default_mode is not None else 0o644
        _downward(directory, the_pod, volume.downward_api, sources.facts, mode)
    elif volume.projected is not None:
        tokens.extend(_projected(the_pod, volume.projected, directory, sources, now))
    return tokens


def _projected(
    the_pod: pod.Pod, projected: pod.ProjectedVolume, directory: pathlib.Path, sources: Sources, now: float
) -> list[TokenFile]:
    mode = projected.default_mode if projected.default_mode is not None else 0o644
    tokens: list[TokenFile] = []
    for part in projected.sources:
        if part.service_account_token is not None:
            spec = part.service_account_token
            token = TokenFile(
                path=directory / spec.path,
                service_account=the_pod.spec.service_account_name,
                audience=spec.audience,
                expiration_seconds=spec.expiration_seconds,
                mode=0o600 if projected.default_mode is None else mode,
            )
            refresh_token(token, sources, now)
            tokens.append(token)
        elif part.config_map is not None:
            cm = part.config_map
            _project_keys(
                directory,
                sources.config_maps(cm.name),
                cm.items,
                what=f"configmap {cm.name!r}",
                optional=bool(cm.optional),
                mode=mode,
            )
        elif part.secret is not None:
            name = part.secret.name or part.secret.secret_name
            _project_keys(
                directory,
                _secret_data(sources, name),
                part.secret.items,
                what=f"secret {name!r}",
                optional=bool(part.secret.optional),
                mode=mode,
            )
        elif part.downward_api is not None:
            _downward(directory, the_pod, part.downward_api, sources.facts, mode)
    return tokens


def _tree(directory: pathlib.Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in directory.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def resync(
    the_pod: pod.Pod, volume: pod.Volume, directory: pathlib.Path, sources: Sources, scratch: pathlib.Path
) -> bool:
    """Bring a configMap, secret or downwardAPI volume up to date, as the kubelet does periodically.

    The new contents are built in ``scratch`` and then copied over file by
    file (atomically each), and files whose keys disappeared are removed.
    Returns whether anything changed.  Other volume kinds are left alone
    (emptyDir is the Pod's own data; projected tokens have their own refresh).
    """
    if volume.config_map is None and volume.secret is None and volume.downward_api is None:
        return False
    shutil.rmtree(scratch, ignore_errors=True)
    materialize(the_pod, volume, scratch, sources, 0.0)
    new, old = _tree(scratch), _tree(directory)
    changed = False
    for name, content in new.items():
        if old.get(name) != content:
            target = directory / name
            write_file(target, content, (scratch / name).stat().st_mode & 0o777)
            changed = True
    for name in old.keys() - new.keys():
        (directory / name).unlink(missing_ok=True)
        changed = True
    shutil.rmtree(scratch, ignore_errors=True)
    return changed


def decode_secret(data: Mapping[str, str]) -> dict[str, str]:
    """A Secret's base64 ``data`` as text (invalid UTF-8 is replaced)."""
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
