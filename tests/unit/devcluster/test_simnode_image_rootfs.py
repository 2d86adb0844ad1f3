"""simnode's image mode, its pure parts: the command, the environment, the user and the launch line."""

from __future__ import annotations

import json
import pathlib
import tarfile

import pytest

from devcluster.simnode import container_process, errors, image_rootfs, options, pod

CONFIG = image_rootfs.ImageConfig(
    args=("tini", "--", "fma-launcher", "--port", "8001"),
    entrypoint_length=2,
    env=(("PATH", "/opt/fma/bin:/usr/bin"), ("LANG", "C.UTF-8")),
    cwd="/app",
    uid=65532,
    gid=65532,
)


def container(command: list[str] | None = None, args: list[str] | None = None) -> pod.Container:
    return pod.Container.model_validate({"name": "c", "image": "x", "command": command or [], "args": args or []})


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        pytest.param(None, None, ["tini", "--", "fma-launcher", "--port", "8001"], id="image-entrypoint-and-cmd"),
        pytest.param(None, ["--port", "$(PORT)"], ["tini", "--", "--port", "9"], id="args-replace-cmd-only"),
        pytest.param(["fma-launcher"], None, ["fma-launcher"], id="command-replaces-both"),
        pytest.param(["sh", "-c"], ["echo $(PORT)"], ["sh", "-c", "echo 9"], id="command-and-args"),
    ],
)
def test_kubernetes_command_rules(command: list[str] | None, args: list[str] | None, expected: list[str]) -> None:
    assert image_rootfs.container_argv(container(command, args), CONFIG, {"PORT": "9"}) == expected


def test_the_containers_env_wins_and_home_comes_from_the_images_passwd(tmp_path: pathlib.Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/sh\nfma:x:65532:65532:fma:/home/fma:/usr/sbin/nologin\n")
    env = image_rootfs.merged_env(CONFIG, {"LANG": "en_US.UTF-8", "POD_IP": "127.1.0.2"}, passwd)
    assert env == {"PATH": "/opt/fma/bin:/usr/bin", "LANG": "en_US.UTF-8", "POD_IP": "127.1.0.2", "HOME": "/home/fma"}
    assert image_rootfs.merged_env(CONFIG, {}, tmp_path / "missing")["HOME"] == "/"


def test_launch_line_overlays_the_image_binds_volumes_inside_and_enters_as_the_user(tmp_path: pathlib.Path) -> None:
    root = image_rootfs.Root(tmp_path / "rootfs", tmp_path / "scratch", 65532, 65532, "/app")
    mounts = [container_process.Mount("/state/vol", "/etc/fma", read_only=True)]
    argv = container_process.launch_argv(["fma-launcher"], mounts, "unshare", root)
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    script = argv[7]
    merged = f"{tmp_path}/scratch/merged"
    assert f"mount -t overlay overlay -o lowerdir={tmp_path}/rootfs,upperdir=" in script
    assert f"mount --rbind /proc {merged}/proc" in script
    assert f"mount --bind /state/vol {merged}/etc/fma" in script
    assert f"mount -o remount,bind,ro {merged}/etc/fma" in script
    assert script.splitlines()[-1].endswith(f" {merged} 65532 65532 '' /app \"$@\"")
    assert argv[-1] == "fma-launcher"


def test_without_a_root_the_host_path_is_unchanged() -> None:
    assert container_process.launch_argv(["true"], [], "unshare", None) == ["true"]


def test_the_option_round_trips(tmp_path: pathlib.Path) -> None:
    opts = options.SimnodeOptions(image_archives=tmp_path)
    _, parsed = options.parse(options.to_argv("/k", opts))
    assert parsed.image_archives == tmp_path
    assert options.parse(options.to_argv("/k", options.SimnodeOptions()))[1].image_archives is None


def test_a_named_user_is_read_from_the_images_passwd(tmp_path: pathlib.Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("fma:x:65532:65533:fma:/home/fma:/usr/sbin/nologin\n")
    assert image_rootfs._user_ids("fma", tmp_path) == (65532, 65533)
    assert image_rootfs._user_ids("1000:2000", tmp_path) == (1000, 2000)
    assert image_rootfs._user_ids("", tmp_path) == (0, 0)
    with pytest.raises(image_rootfs.UnpackError, match="'nobody'"):
        image_rootfs._user_ids("nobody", tmp_path)


def test_mount_points_follow_the_images_symlinks_inside_the_image(tmp_path: pathlib.Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run").symlink_to("/run")  # Debian's: absolute, so on the host it means the host's /run
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "alt").symlink_to("../run/x")
    assert image_rootfs.resolve_in_root(tmp_path, "/var/run/secrets/kubernetes.io") == "/run/secrets/kubernetes.io"
    assert image_rootfs.resolve_in_root(tmp_path, "/etc/alt/y") == "/run/x/y"
    assert image_rootfs.resolve_in_root(tmp_path, "/opt/../etc/fma") == "/etc/fma"
    (tmp_path / "loop").symlink_to("/loop")
    with pytest.raises(OSError, match="too many"):
        image_rootfs.resolve_in_root(tmp_path, "/loop/x")


PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\nfma:x:65532:65532:fma:/home/fma:/usr/sbin/nologin\napp:x:1000:1001::/srv:/bin/sh\n"
)


def a_pod(pod_context: dict[str, object] | None = None, own: dict[str, object] | None = None) -> pod.Pod:
    spec: dict[str, object] = {"containers": [{"name": "c", "image": "x", **({"securityContext": own} if own else {})}]}
    if pod_context is not None:
        spec["securityContext"] = pod_context
    return pod.Pod.model_validate({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": spec})


@pytest.mark.parametrize(
    ("pod_context", "own", "expected"),
    [
        pytest.param(None, None, (65532, 65532, ()), id="the-images-user"),
        pytest.param({"runAsUser": 1000}, None, (1000, 1001, ()), id="pod-user-group-from-passwd"),
        pytest.param({"runAsUser": 4242}, None, (4242, 0, ()), id="user-not-in-passwd-group-0"),
        pytest.param({"runAsUser": 1000, "runAsGroup": 7}, {"runAsUser": 2000}, (2000, 7, ()), id="container-wins"),
        pytest.param({"runAsGroup": 9}, None, (65532, 9, ()), id="group-over-the-images-user"),
        pytest.param({"supplementalGroups": [5, 6], "fsGroup": 6}, None, (65532, 65532, (5, 6)), id="groups"),
        pytest.param({"runAsNonRoot": True}, None, (65532, 65532, ()), id="non-root-image-user-passes"),
    ],
)
def test_the_security_context_sets_the_user_over_the_images(
    tmp_path: pathlib.Path,
    pod_context: dict[str, object] | None,
    own: dict[str, object] | None,
    expected: tuple[int, int, tuple[int, ...]],
) -> None:
    (tmp_path / "passwd").write_text(PASSWD)
    the_pod = a_pod(pod_context, own)
    assert image_rootfs.run_as(the_pod, the_pod.spec.containers[0], CONFIG, tmp_path / "passwd") == expected
    root = image_rootfs.container_root(the_pod, the_pod.spec.containers[0], tmp_path, CONFIG, tmp_path / "s")
    assert root.workdir == "/app"


@pytest.mark.parametrize(
    ("pod_context", "own", "config", "message"),
    [
        pytest.param({"runAsNonRoot": True, "runAsUser": 0}, None, CONFIG, "runAsUser breaks non-root", id="uid-0"),
        pytest.param(
            {"runAsNonRoot": True},
            None,
            image_rootfs.ImageConfig(args=(), entrypoint_length=0, env=(), cwd="/", uid=0, gid=0),
            "image will run as root",
            id="root-image",
        ),
        pytest.param(
            None,
            {"runAsNonRoot": True},
            image_rootfs.ImageConfig(args=(), entrypoint_length=0, env=(), cwd="/", uid=65532, gid=65532, user="fma"),
            "non-numeric user \\(fma\\)",
            id="named-image-user",
        ),
        pytest.param({"runAsUser": "65532"}, None, CONFIG, "is not a UID", id="not-an-int"),
    ],
)
def test_run_as_non_root_refuses_a_root_user_as_the_kubelet_does(
    tmp_path: pathlib.Path,
    pod_context: dict[str, object] | None,
    own: dict[str, object] | None,
    config: image_rootfs.ImageConfig,
    message: str,
) -> None:
    the_pod = a_pod(pod_context, own)
    with pytest.raises(errors.PodConfigError, match=message) as raised:
        image_rootfs.run_as(the_pod, the_pod.spec.containers[0], config, tmp_path / "passwd")
    assert raised.value.reason == "CreateContainerConfigError"


def test_home_follows_the_user_the_container_runs_as(tmp_path: pathlib.Path) -> None:
    (tmp_path / "passwd").write_text(PASSWD)
    assert image_rootfs.merged_env(CONFIG, {}, tmp_path / "passwd", 1000)["HOME"] == "/srv"
    assert image_rootfs.merged_env(CONFIG, {}, tmp_path / "passwd")["HOME"] == "/home/fma"


def test_the_launch_line_passes_the_supplementary_groups(tmp_path: pathlib.Path) -> None:
    root = image_rootfs.Root(tmp_path / "rootfs", tmp_path / "scratch", 1000, 7, "/", (5, 6))
    script = container_process.launch_argv(["id"], [], "unshare", root)[7]
    assert script.splitlines()[-1].endswith(f' {tmp_path}/scratch/merged 1000 7 5,6 / "$@"')


def test_the_store_keeps_an_archive_when_its_build_is_pruned(tmp_path: pathlib.Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    index = tmp_path / "index.json"
    index.write_text(
        json.dumps({"manifests": [{"digest": "sha256:ab", "annotations": {"io.containerd.image.name": "r/fma:1"}}]})
    )
    with tarfile.open(build / "fma.tar", "w") as tar:
        tar.add(index, arcname="index.json")
    store = image_rootfs.Store(build, tmp_path / "unpacked")
    kept = store.lookup("r/fma:1")
    assert kept == tmp_path / "unpacked" / "archives" / "sha256-ab.tar"
    (build / "fma.tar").unlink()  # another build of the tree pruned this one
    assert store.lookup("r/other:1") is None  # a name it does not know: the build directory is scanned again
    assert store.lookup("r/fma:1") == kept
    assert kept.is_file()


def test_a_read_only_root_is_remounted_read_only_after_the_volumes(tmp_path: pathlib.Path) -> None:
    (tmp_path / "rootfs").mkdir()
    root = image_rootfs.Root(tmp_path / "rootfs", tmp_path / "scratch", 65532, 65532, "/app", read_only=True)
    mounts = [container_process.Mount("/state/tmp", "/tmp")]
    lines = container_process.launch_argv(["x"], mounts, "unshare", root)[7].splitlines()
    merged = f"{tmp_path}/scratch/merged"
    volume = lines.index(f"mount --bind /state/tmp {merged}/tmp || exit 121")
    remount = lines.index(f"mount -o remount,bind,ro {merged} || exit 121")
    assert volume < lines.index(f"mkdir -p {merged}/app") < remount
    writable = image_rootfs.Root(tmp_path / "rootfs", tmp_path / "scratch", 65532, 65532, "/app")
    assert "remount,bind,ro" not in container_process.launch_argv(["x"], [], "unshare", writable)[7]
    the_pod = a_pod(None, {"readOnlyRootFilesystem": True})
    assert image_rootfs.container_root(the_pod, the_pod.spec.containers[0], tmp_path, CONFIG, tmp_path / "s").read_only
