"""lib/apk/db/installed and etc/apk/world: the fixture's real database, read and written."""

from __future__ import annotations

from rvforge import Tree

from rvforge_alpine.installed_db import (
    INSTALLED,
    InstalledDb,
    InstalledFile,
    parse_world,
    render_world,
)
from rvforge_alpine.pkginfo import Dependency, PackageInfo


def test_real_database_round_trips_byte_for_byte(minirootfs: Tree) -> None:
    text = minirootfs.read_text(INSTALLED)
    db = InstalledDb.parse(text)
    assert db.render() == text
    assert [p.info.label for p in db.packages][:3] == [
        "alpine-baselayout-3.6.5-r0", "alpine-baselayout-data-3.6.5-r0", "alpine-keys-2.4-r1"]
    assert len(db.packages) == 14


def test_real_database_fields(minirootfs: Tree) -> None:
    parsed = InstalledDb.parse(minirootfs.read_text(INSTALLED))
    db = parsed.by_name()
    binsh = db["busybox-binsh"].info
    assert binsh.provider_priority == 100
    assert binsh.provided("/bin/sh") == (True, None)
    assert binsh.provided("cmd:sh") == (True, "1.36.1-r29")
    assert db["ssl_client"].info.install_if == [
        Dependency("busybox", "=", "1.36.1-r29"), Dependency("libssl3")]
    assert db["musl"].info.satisfies(Dependency("so:libc.musl-riscv64.so.1"))
    assert db["alpine-baselayout"].info.replaces == []
    assert "/etc/motd" in set(db["alpine-baselayout"].paths())
    assert parsed.packages[0].info.checksum == "Q1qKcZ+j23xssAXmgQhkOO8dHnbWw="


def test_every_file_of_the_database_is_in_the_tree(minirootfs: Tree) -> None:
    owners = InstalledDb.parse(minirootfs.read_text(INSTALLED)).owners()
    assert owners["/bin/busybox"] == "busybox"
    missing = [path for path in owners if minirootfs.get(path) is None]
    assert missing == []


def test_added_package_record_format() -> None:
    db = InstalledDb()
    info = PackageInfo("hello", "1.0-r0", checksum="Q1abc=", arch="riscv64", size=10,
                       installed_size=5, depends=[Dependency("so:libc.musl-riscv64.so.1")])
    db.add(info, [
        InstalledFile("usr", True, mode=0o755), InstalledFile("usr/bin", True, mode=0o755),
        InstalledFile("usr/bin/hello", False, 0, 0, 0o755, "Q1x="),
        InstalledFile("var/lib/hello", True, 100, 101, 0o700),
        InstalledFile("etc/hello.conf", False, 0, 0, 0o644, "Q1y="),
    ])
    assert db.render() == (
        "C:Q1abc=\nP:hello\nV:1.0-r0\nA:riscv64\nS:10\nI:5\nD:so:libc.musl-riscv64.so.1\n"
        "F:usr\nF:usr/bin\nR:hello\na:0:0:755\nZ:Q1x=\nF:var/lib/hello\nM:100:101:700\n"
        "F:etc\nR:hello.conf\nZ:Q1y=\n\n"
    )
    again = InstalledDb.parse(db.render())
    assert again.render() == db.render()
    assert set(again.packages[0].paths()) >= {"/usr/bin/hello", "/etc/hello.conf"}


def test_world(minirootfs: Tree) -> None:
    world = parse_world(minirootfs.read_text("/etc/apk/world"))
    assert world == ["alpine-baselayout", "alpine-keys", "apk-tools", "busybox", "libc-utils"]
    assert render_world([*world, "curl", "busybox"]) == (
        "alpine-baselayout\nalpine-keys\napk-tools\nbusybox\ncurl\nlibc-utils\n")
