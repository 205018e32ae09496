"""``--backend debootstrap`` and ``--backend mmdebstrap``: the host's tools build the tree.

For people who trust the reference tools. ``debootstrap --foreign`` (first stage only) and
``mmdebstrap`` (``--variant`` as given; a foreign architecture without binfmt only
supports ``extract``) write a directory under the scratch space, which is read back
with its owners. Configuration (:data:`MODES`): with debootstrap, ``first-boot`` installs
a hook that runs its second stage (``/debootstrap/debootstrap --second-stage``) on first
boot, ``vm`` runs that hook in a VM now (:func:`rvforge_debootstrap.vm.configure_in_vm`),
``binfmt`` lets debootstrap run both stages through the host's handler (no
``--foreign``); mmdebstrap configures through a handler itself when it finds one
(``binfmt`` checks there is one first). Both tools need root here (or mmdebstrap's user
namespaces).
"""

from __future__ import annotations

import shutil
import subprocess

from rvforge import BuildContext, InputError, ToolMissingError, Tree, UsageError
from rvforge.formats.directory import read_directory

from rvforge_debootstrap.firstboot import HOOK, HOOK_DIR
from rvforge_debootstrap.mirror import choose_mirror
from rvforge_debootstrap.options import ARCH, DebootstrapOptions
from rvforge_debootstrap.release import DEFAULT_KEYRING

SECOND_STAGE = """#!/bin/sh
# rvforge-debootstrap: run debootstrap's second stage on first boot, then remove this hook.
# In a mount namespace of its own: when it ends, the second stage unmounts /proc, /sys,
# /dev/pts and /dev/shm of its target, here the running system's own.
set -e
unshare --mount --propagation private /debootstrap/debootstrap --second-stage
rm -f "$0"
"""


def command(options: DebootstrapOptions, mode: str, target: str) -> list[str]:
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
        stages = [] if mode == "binfmt" else ["--foreign"]
        return ["debootstrap", *stages, f"--arch={ARCH}", *variants[options.variant],
                *include, f"--keyring={keyring}", options.release, target, mirror]
    return ["mmdebstrap", f"--variant={options.variant}", f"--architectures={ARCH}",
            *include, f"--keyring={keyring}", options.release, target, mirror]


MODES = {"debootstrap": ("none", "first-boot", "vm", "binfmt"), "mmdebstrap": ("none", "binfmt")}
"""The ``--configure`` modes each tool supports (``auto`` is resolved first). mmdebstrap
has no foreign first stage: without a handler it only extracts, and writes no dpkg
database that could be configured later."""


def configure_mode(tool: str, requested: str, ctx: BuildContext) -> str:
    """The mode a ``--backend`` build uses: ``auto`` is what
    :func:`rvforge_debootstrap.configure.auto_mode` picks for debootstrap, and whatever
    mmdebstrap decides itself (``none``: it configures when it finds a binfmt handler)."""
    from rvforge_debootstrap.configure import auto_mode, preflight

    mode = requested
    if requested == "auto":
        mode = auto_mode(ctx, ARCH) if tool == "debootstrap" else "none"
    if mode not in MODES[tool]:
        raise UsageError(f"--backend {tool} supports --configure {', '.join(MODES[tool])} or "
                         f"auto, not {requested!r}; use --backend python for the others")
    preflight(mode, ARCH, ctx)
    return mode


def provide_with_tool(options: DebootstrapOptions, ctx: BuildContext) -> Tree:
    """Run the tool into a scratch directory, read it back, configure as asked."""
    from rvforge_debootstrap.vm import configure_in_vm

    tool = options.backend
    if shutil.which(tool) is None:
        raise ToolMissingError(f"{tool} is missing: apt-get install {tool}, or use "
                               "--backend python")
    mode = configure_mode(tool, options.configure, ctx)
    target = ctx.scratch("debootstrap", tool)  # an empty directory: mmdebstrap writes a
    # tarball unless its target is one
    argv = command(options, mode, str(target))
    ctx.log.info("running", argv=" ".join(argv))
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise InputError(f"{tool} failed (exit {result.returncode}): {tail}")
    tree = read_directory(target, owners="preserve")
    if tool == "debootstrap" and mode in ("first-boot", "vm"):
        tree.add_dir(HOOK_DIR)
        tree.add_file(HOOK, SECOND_STAGE.encode(), mode=0o755)
    if mode == "vm":
        configure_in_vm(tree, ctx)
    return tree
