"""Shares, networking and the gdbstub: what the flags and profiles turn into (the boots
themselves are in tests/test_boot.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvforge import Machine, UsageError

from rvforge_qemu.devices import Devices, parse_share
from rvforge_qemu.options import LaunchOptions
from rvforge_qemu.prepared import devices_of


def test_shares_become_9p_devices_and_kernel_words(tmp_path: Path) -> None:
    (tmp_path / "a,b").mkdir()
    devices = Devices.parse([f"{tmp_path}/a,b:/mnt/deep/inner:ro", f"{tmp_path}:/mnt/deep"],
                            net=False, forwards=[])
    assert [s.guest for s in devices.shares] == ["/mnt/deep", "/mnt/deep/inner"]
    args = devices.qemu_args()
    assert f"local,id=rvforge-fs0,path={tmp_path}/a,,b,security_model=none,readonly=on" in args
    assert "virtio-9p-pci,fsdev=rvforge-fs1,mount_tag=rvshare1" in args
    assert devices.kernel_words() == ["rvforge.share=rvshare1:/mnt/deep",
                                      "rvforge.share=rvshare0:/mnt/deep/inner:ro"]
    assert devices.modules == ("9p", "9pnet_virtio")


def test_forwards_imply_the_network_and_bind_only_loopback() -> None:
    devices = Devices.parse([], net=False, forwards=["8080:80", "2222:22"])
    assert devices.net and devices.modules == ("virtio_net",)
    netdev = devices.qemu_args()[devices.qemu_args().index("-netdev") + 1]
    assert netdev == ("user,id=rvforge-net,hostfwd=tcp:127.0.0.1:8080-:80,"
                      "hostfwd=tcp:127.0.0.1:2222-:22")
    assert devices.kernel_words() == ["rvforge.net=1"]


def test_gdb_listens_on_loopback_and_halted_adds_minus_s() -> None:
    assert Devices.parse([], False, [], gdb=4321, halted=True).qemu_args() == [
        "-gdb", "tcp:127.0.0.1:4321", "-S"]
    assert Devices.parse([], False, []).qemu_args() == []


@pytest.mark.parametrize(("spec", "message"), [
    ("{tmp}:/", "/ is a system directory"),
    ("{tmp}:/etc", "/etc is a system directory"),
    ("{tmp}:/dev/shm/x", "/dev/shm/x is a system directory"),
    ("{tmp}:/mnt/../usr", "/usr is a system directory"),
    ("{tmp}/missing:/mnt/x", "does not exist"),
    ("{tmp}:relative", "must be an absolute path"),
    ("{tmp}:/mnt/x;reboot", "may hold only"),
    (":/mnt/x", "expected HOST:GUEST[:ro]"),
])
def test_bad_shares_are_refused(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(UsageError, match="--share .*" + message.replace("[", r"\[")
                       .replace("]", r"\]").replace(".", r"\.")):
        parse_share(spec.replace("{tmp}", str(tmp_path)))


def test_two_shares_on_one_guest_directory_or_port_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="two shares are mounted at /mnt/x"):
        Devices.parse([f"{tmp_path}:/mnt/x", f"{tmp_path}:/mnt/x/"], False, [])
    with pytest.raises(UsageError, match="a host port is forwarded twice"):
        Devices.parse([], False, ["8080:80", "8080:81"])


def test_a_profile_carries_shares_net_and_forwards_and_flags_add_to_them(
        tmp_path: Path) -> None:
    machine = Machine("dev", "qemu-virt", "", options={
        "shares": [f"{tmp_path}:/mnt/profile"], "net": True, "forwards": ["8080:80"]})
    devices = devices_of(machine, LaunchOptions(share=[f"{tmp_path}:/mnt/flag:ro"],
                                                forward=["9090:90"]))
    assert [(s.guest, s.readonly) for s in devices.shares] == [
        ("/mnt/profile", False), ("/mnt/flag", True)]
    assert devices.net and [f.host_port for f in devices.forwards] == [8080, 9090]
    bad = Machine("bad", "qemu-virt", "", options={"net": "yes"})
    with pytest.raises(UsageError, match="machine 'bad': net must be true or false"):
        devices_of(bad, LaunchOptions())
