"""What a guest is told before its first command: on a restored guest, fresh randomness and
the host's time; on every snapshot-capable guest, the shares of this run mounted.

Both travel as ``RUN`` requests of the init protocol (:mod:`rvforge.protocol`), so the
guest needs nothing it did not have at boot. The guest's init reads a request one byte at
a time (busybox's ``read``), about 0.1 ms a byte under TCG, so what a restore sends is
kept small:

- before the save, :func:`install_script` writes a small static program
  (:func:`rvforge_qemu.stub.assemble_fresh`, about 1 KB as ``printf`` escapes) to the
  guest's ``/run``, a tmpfs: it is in the saved RAM, and every restore finds it there;
- after a restore, :func:`fresh_script` pipes it 64 bytes of the host's randomness and the
  host's time, and mounts each share (the 9p device was present but unmounted when the
  state was saved: QEMU cannot migrate a mounted 9p export, and the host directory behind
  it is chosen per run). A guest that booted needs no reseeding: only its shares.
"""

from __future__ import annotations

import os
import shlex
import struct
import time

from rvforge_qemu.devices import Share
from rvforge_qemu.stub import SEED_BYTES, assemble_fresh

PROGRAM = "/run/.rvforge-fresh"
SHARE_OPTIONS = "trans=virtio,version=9p2000.L,msize=262144"
"""The mount options rvforge's ``/init`` uses for a share at boot."""


def install_script() -> str:
    """The shell line writing the refresh program into the guest (run before the save)."""
    return (f"printf '{_octal(assemble_fresh())}' > {PROGRAM} && chmod 700 {PROGRAM} "
            '|| { echo "rvforge: cannot write the refresh program" >&2; exit 1; }\n')


def fresh_script(shares: tuple[Share, ...], *, restored: bool = True) -> str:
    """The shell script making a ``restored`` guest fresh (the program of
    :func:`install_script` reseeds it and sets its clock) and mounting ``shares``; exits
    non-zero (with one line on stderr) if a step fails. Empty when there is nothing to do."""
    lines = []
    if restored:
        now = time.time_ns()
        data = os.urandom(SEED_BYTES) + struct.pack("<qq", now // 1_000_000_000,
                                                    now % 1_000_000_000)
        lines.append(f"printf '{_octal(data)}' | {PROGRAM} "
                     '|| { echo "rvforge: cannot refresh the restored guest" >&2; exit 1; }')
    for share in shares:
        options = SHARE_OPTIONS + (",ro" * share.readonly)
        guest = shlex.quote(share.guest)
        lines.append(f"mkdir -p {guest} && mount -t 9p -o {options} {share.tag} {guest} "
                     f"|| {{ echo 'rvforge: cannot mount the shared directory {share.tag} "
                     f"on {share.guest}' >&2; exit 1; }}")
    return "".join(f"{line}\n" for line in lines)


def _octal(data: bytes) -> str:
    """``data`` as ``printf`` octal escapes (POSIX: dash and busybox read them alike)."""
    return "".join(f"\\{byte:03o}" for byte in data)
