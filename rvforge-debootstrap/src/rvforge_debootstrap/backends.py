"""``--backend debootstrap`` and ``--backend mmdebstrap``: the host's tools build the tree.

For people who trust the reference tools. ``debootstrap --foreign`` (first stage only) and
``mmdebstrap`` (``--variant`` as given; a foreign architecture without binfmt only
supports ``extract``) write a directory under the scratch space, which is read back
with its owners. Configuration: ``first-boot`` installs a hook that runs debootstrap's
second stage (``/debootstrap/debootstrap --second-stage``); ``none`` leaves it as is;
``binfmt`` checks the host's qemu-riscv64 handler as the python backend does
(:func:`rvforge_debootstrap.binfmt.preflight`) and lets the tool configure the tree
itself through it (debootstrap without ``--foreign``; mmdebstrap detects the handler).
Both tools need root here (or mmdebstrap's user namespaces).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

from rvforge import BuildContext, InputError, ToolMissingError, Tree, UsageError
from rvforge.archives import read_directory

from rvforge_debootstrap import binfmt
from rvforge_debootstrap.firstboot import HOOK, HOOK_DIR
from rvforge_debootstrap.mirror import choose_mirror
from rvforge_debootstrap.provider import ARCH
from rvforge_debootstrap.release import DEFAULT_KEYRING

if TYPE_CHECKING:
    from rvforge_debootstrap.provider import DebootstrapOptions

SECOND_STAGE = """#!/bin/sh
# rvforge-debootstrap: run debootstrap's second stage on first boot, then remove this hook.
set -e
/debootstrap/debootstrap --second-stage
rm -f "$0"
"""


def command(options: DebootstrapOptions, target: str) -> list[str]:
    """The command line of the chosen tool (debootstrap's first stage only, unless the
    tree is configured through binfmt)."""
    mirror = choose_mirror(options.mirror)
    keyring = str(options.keyring or DEFAULT_KEYRING)
    include = [f"--include={','.join(options.package)}"] if options.package else []
    if options.backend == "debootstrap":
        variants = {"minbase": ["--variant=minbase"], "standard": []}
        if options.variant not in variants:
            raise UsageError(f"--backend debootstrap has no variant {options.variant!r} "
                             "(it has minbase and standard); use --backend mmdebstrap or "
                             "python")
        stages = [] if options.configure == "binfmt" else ["--foreign"]
        return ["debootstrap", *stages, f"--arch={ARCH}", *variants[options.variant],
                *include, f"--keyring={keyring}", options.release, target, mirror]
    return ["mmdebstrap", f"--variant={options.variant}", f"--architectures={ARCH}",
            *include, f"--keyring={keyring}", options.release, target, mirror]


def provide_with_tool(options: DebootstrapOptions, ctx: BuildContext) -> Tree:
    tool = options.backend
    if shutil.which(tool) is None:
        raise ToolMissingError(f"{tool} is missing: apt-get install {tool}, or use "
                               "--backend python")
    if options.configure not in ("none", "first-boot", "auto", "binfmt"):
        raise UsageError(f"--backend {tool} supports --configure first-boot, binfmt or none, "
                         f"not {options.configure!r}")
    if options.configure == "binfmt":
        binfmt.preflight(ARCH)
    target = ctx.scratch("debootstrap", tool)  # an empty directory: mmdebstrap writes a
    # tarball unless its target is one
    argv = command(options, str(target))
    ctx.log.info("running", argv=" ".join(argv))
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise InputError(f"{tool} failed (exit {result.returncode}): {tail}")
    tree = read_directory(target, owners="preserve")
    if tool == "debootstrap" and options.configure in ("first-boot", "auto"):
        tree.add_dir(HOOK_DIR)
        tree.add_file(HOOK, SECOND_STAGE.encode(), mode=0o755)
    return tree
