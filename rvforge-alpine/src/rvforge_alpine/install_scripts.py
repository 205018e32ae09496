"""Install scripts of added packages: recorded as apk records them, run on first boot.

A package's ``.pre-install``, ``.post-install`` and ``.trigger`` are riscv64 shell scripts
calling riscv64 programs; the host cannot run them (that would need binfmt emulation and a
chroot, i.e. root). rvforge-alpine therefore:

* records them as apk does: in ``lib/apk/db/scripts.tar`` (``<name>-<version>.<C:>.<script>``)
  and ``lib/apk/db/triggers`` (``<C:> <dir>...``), so ``apk`` in the guest sees a
  consistent database;
* with ``--scripts first-boot`` (the default), copies them to
  :data:`SCRIPT_DIR` and writes :data:`RUNNER`, which rvforge's ``/init`` runs once at the
  first boot: each package's scripts in install order (``.pre-install VERSION``,
  ``.post-install VERSION``), then triggers with their directories;
* with ``--scripts skip``, runs nothing and reports which packages carry scripts.

Files are extracted before their ``.pre-install`` runs, with the numeric owners their tar
headers record.
"""

from __future__ import annotations

import io
import posixpath
import shlex
import tarfile

from rvforge import BuildContext, InputError, Tree
from rvforge.protocol import FIRST_BOOT_DIR

from rvforge_alpine.apkfile import ApkFile
from rvforge_alpine.installed_db import SCRIPTS, TRIGGERS

RUNNER = f"{FIRST_BOOT_DIR}/50-apk-scripts"
SCRIPT_DIR = "/usr/share/rvforge/apk-scripts"
POLICIES = ("first-boot", "skip")
_RUN_ORDER = (".pre-install", ".post-install")


def record(tree: Tree, packages: list[ApkFile], policy: str, ctx: BuildContext) -> None:
    """Record the scripts of newly installed ``packages`` (in install order) in the tree."""
    if policy not in POLICIES:
        raise InputError(f"--scripts {policy!r}: expected one of {', '.join(POLICIES)}")
    with_scripts = [apk for apk in packages if apk.scripts]
    if not with_scripts:
        return
    _append_scripts_tar(tree, with_scripts)
    _append_triggers(tree, [apk for apk in with_scripts if ".trigger" in apk.scripts])
    names = ", ".join(apk.info.label for apk in with_scripts)
    if policy == "skip":
        ctx.log.warning("install scripts NOT run (--scripts skip); the packages may need "
                        "them", packages=names)
        return
    _write_runner(tree, with_scripts)
    ctx.log.info("install scripts will run at first boot", runner=RUNNER, packages=names)


def _append_scripts_tar(tree: Tree, packages: list[ApkFile]) -> None:
    out = io.BytesIO()
    existing = tree.lookup(SCRIPTS)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        if existing is not None and tree.is_file(SCRIPTS):
            with tarfile.open(fileobj=io.BytesIO(tree.read_bytes(SCRIPTS))) as old:
                for member in old:
                    source = old.extractfile(member) if member.isreg() else None
                    archive.addfile(member, source)
        for apk in packages:
            for script, content in sorted(apk.scripts.items()):
                info = tarfile.TarInfo(f"{apk.info.label}.{apk.info.checksum}{script}")
                info.size, info.mode = len(content), 0o755
                info.mtime = int(apk.info.build_time or 0)
                archive.addfile(info, io.BytesIO(content))
    mode, uid, gid = ((existing.mode, existing.uid, existing.gid) if existing is not None
                      else (0o644, 0, 0))
    tree.add_file(SCRIPTS, out.getvalue(), mode=mode, uid=uid, gid=gid)


def _append_triggers(tree: Tree, packages: list[ApkFile]) -> None:
    if not packages:
        return
    text = tree.read_text(TRIGGERS) if tree.is_file(TRIGGERS) else ""
    if text and not text.endswith("\n"):
        text += "\n"
    for apk in packages:
        text += " ".join([apk.info.checksum, *apk.triggers]) + "\n"
    tree.add_file(TRIGGERS, text.encode())


def _write_runner(tree: Tree, packages: list[ApkFile]) -> None:
    calls: list[tuple[int, int, str]] = []
    triggers: list[str] = []
    for number, apk in enumerate(packages, 1):
        for script, content in sorted(apk.scripts.items()):
            name = f"{number:03d}-{apk.info.label}{script}"
            tree.add_file(posixpath.join(SCRIPT_DIR, name), content, mode=0o755)
            if script in _RUN_ORDER:
                calls.append((_RUN_ORDER.index(script), number,
                              f"run {shlex.quote(name)} {shlex.quote(apk.info.version)}"))
            elif script == ".trigger":
                args = " ".join(shlex.quote(d) for d in apk.triggers)
                triggers.append(f"run {shlex.quote(name)} {args}".rstrip())
    ordered = [line for _, _, line in sorted(calls, key=lambda c: (c[1], c[0]))]
    body = "\n".join(ordered + triggers)
    runner = _RUNNER_TEMPLATE.replace("@SCRIPT_DIR@", SCRIPT_DIR).replace("@CALLS@", body)
    tree.add_file(RUNNER, runner.encode(), mode=0o755)


_RUNNER_TEMPLATE = """#!/bin/sh
# Written by rvforge-alpine: the install scripts of packages added at build time, which
# could not run on the build host. rvforge's /init runs this once, at the first boot.
dir=@SCRIPT_DIR@
status=0
run() {
    script=$1
    shift
    echo "rvforge: apk script $script"
    "$dir/$script" "$@" || { echo "rvforge: apk script $script failed ($?)"; status=1; }
}
@CALLS@
exit $status
"""
