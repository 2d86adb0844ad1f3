"""simnode's image mode, its pure parts: the command, the environment, the user and the launch line."""

from __future__ import annotations

import pathlib

import pytest

from devcluster.simnode import container_process, image_rootfs, options, pod

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
    assert script.splitlines()[-1].endswith(f' {merged} 65532 65532 /app "$@"')
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
