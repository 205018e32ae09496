"""The ``debootstrap`` provider against the real mirror: extract and minbase trees of trixie
riscv64, extra packages, the ISA audit, the CLI's exit codes."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from fixture_types import RunRvforge

from rvforge import BuildContext, Severity, Tree
from rvforge.options import build_options
from rvforge.pipeline import audit

from rvforge_debootstrap.firstboot import HOOK, ORDER_FILE
from rvforge_debootstrap.provider import DebootstrapOptions, DebootstrapProvider

pytestmark = pytest.mark.network


def provide(ctx: BuildContext, **values: object) -> Tree:
    options = build_options(DebootstrapOptions, values, owner="provider 'debootstrap'")
    return DebootstrapProvider().provide(options, ctx)


def status_packages(tree: Tree) -> dict[str, str]:
    """Package name → Status line of var/lib/dpkg/status."""
    found = {}
    for block in tree.read_text("/var/lib/dpkg/status").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if ": " in line and not line.startswith(" "))
        if "Package" in fields:
            found[fields["Package"]] = fields["Status"]
    return found


def check_debian_tree(tree: Tree) -> dict[str, str]:
    assert tree.read_text("/etc/debian_version").startswith("13.")
    assert tree.is_file("/usr/bin/dpkg")
    usr_bin = tree.lookup("/bin")
    assert usr_bin is not None and usr_bin.kind.value == "dir" and tree["/bin"].target == "usr/bin"
    status = status_packages(tree)
    assert {"base-files", "dpkg", "libc6", "base-passwd"} <= set(status)
    assert set(status.values()) == {"install ok unpacked"}
    lists = {e.name.removesuffix(".list").split(":")[0]
             for e in tree.children("/var/lib/dpkg/info") if e.name.endswith(".list")}
    assert lists == set(status), "every package in status has its .list file, and only they"
    assert "/usr/bin/dpkg" in tree.read_text("/var/lib/dpkg/info/dpkg.list").splitlines()
    assert tree["/var/lib/dpkg/info/base-passwd.preinst"].mode == 0o755
    assert "Conffiles:\n /etc/debian_version " in tree.read_text("/var/lib/dpkg/status")
    return status


def test_minbase(ctx: BuildContext) -> None:
    tree = provide(ctx, configure="first-boot")  # unpacked, the hook installed
    status = check_debian_tree(tree)
    assert {"apt", "dash", "coreutils", "mawk"} <= set(status)
    assert tree.is_file(HOOK) and tree[HOOK].mode == 0o755
    order = tree.read_text(ORDER_FILE).split()
    assert order.index("libc6:riscv64") < order.index("libapt-pkg7.0:riscv64") < order.index("apt")
    machine = ctx.registry.machines.get("generic-rv64gc")
    report = audit(ctx.registry, tree, machine, ctx, ["isa"])
    assert [f for f in report.findings if f.severity is Severity.ERROR] == []


def test_extract_variant_is_unpacked_only(ctx: BuildContext) -> None:
    tree = provide(ctx, variant="extract", configure="first-boot")
    status = check_debian_tree(tree)
    assert "apt" not in status
    assert not tree.is_file(HOOK)


def test_extra_package_busybox_static(ctx: BuildContext) -> None:
    tree = provide(ctx, variant="extract", package=["busybox-static"])
    assert "busybox-static" in status_packages(tree)
    assert tree.read_bytes("/usr/bin/busybox")[:4] == b"\x7fELF"


def test_cli_builds_a_tarball_with_owners(debian_cache: Path, tmp_path: Path,
                                          rvforge_cli: RunRvforge) -> None:
    out = tmp_path / "debian.tar"
    result = rvforge_cli("build", "--provider", "debootstrap", "--variant", "extract",
                         "--package", "busybox-static", "-o", str(out),
                         env={"RVFORGE_CACHE_DIR": str(debian_cache)})
    assert result.returncode == 0, result.stderr
    with tarfile.open(out) as archive:
        names = {m.name.lstrip("./"): m for m in archive.getmembers()}
    assert names["usr/bin/busybox"].uid == 0
    assert names["var/lib/dpkg/status"].isfile()
    assert names["usr/bin/su"].mode == 0o4755  # setuid kept
    chkpwd = names["usr/sbin/unix_chkpwd"]
    assert (chkpwd.mode, chkpwd.uid, chkpwd.gid) == (0o2755, 0, 42)  # setgid, group shadow


def test_cli_unknown_package_exits_2_naming_it(debian_cache: Path, tmp_path: Path,
                                               rvforge_cli: RunRvforge) -> None:
    out = tmp_path / "x.tar"
    result = rvforge_cli("build", "--provider", "debootstrap", "--package", "no-such-pkg-xyz",
                         "-o", str(out), env={"RVFORGE_CACHE_DIR": str(debian_cache)})
    assert result.returncode == 2, result.stderr
    assert "'no-such-pkg-xyz' is not in trixie main/riscv64" in result.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_bad_variant_is_a_usage_error(rvforge_cli: RunRvforge) -> None:
    result = rvforge_cli("build", "--provider", "debootstrap", "--variant", "huge")
    assert result.returncode == 2
    assert "--variant must be one of extract, essential, minbase, standard" in result.stderr

