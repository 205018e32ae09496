"""What a guest is told after it is restored from a snapshot (and, on a snapshot-capable
cold boot, right after its ready state was saved): fresh randomness and the host's time,
then the shares of this run mounted.

It travels as one ``RUN`` request of the init protocol (:mod:`rvforge.protocol`), so the
guest needs nothing it did not have at boot: :func:`fresh_script` writes a small static
program (:func:`rvforge_qemu.stub.assemble_fresh`) to the guest's ``/run``, pipes it 64
bytes of the host's randomness and the host's time, removes it, and mounts each share
(the 9p device was present but unmounted when the state was saved: QEMU cannot migrate a
mounted 9p export, and the host directory behind it is chosen per run).
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
    """The shell line writing the refresh program into the guest."""
    return f"printf '{_octal(assemble_fresh())}' > {PROGRAM} && chmod 700 {PROGRAM}\n"


def fresh_script(shares: tuple[Share, ...]) -> str:
    """The shell script making the guest fresh and mounting ``shares``; exits non-zero
    (with one line on stderr) if a step fails."""
    now = time.time_ns()
    data = os.urandom(SEED_BYTES) + struct.pack("<qq", now // 1_000_000_000,
                                                now % 1_000_000_000)
    lines = [install_script().rstrip("\n"),
             f"printf '{_octal(data)}' | {PROGRAM} "
             '|| { echo "rvforge: cannot refresh the restored guest" >&2; exit 1; }',
             f"rm -f {PROGRAM}"]
    for share in shares:
        options = SHARE_OPTIONS + (",ro" * share.readonly)
        guest = shlex.quote(share.guest)
        lines.append(f"mkdir -p {guest} && mount -t 9p -o {options} {share.tag} {guest} "
                     f"|| {{ echo 'rvforge: cannot mount the shared directory {share.tag} "
                     f"on {share.guest}' >&2; exit 1; }}")
    return "\n".join(lines) + "\n"


def _octal(data: bytes) -> str:
    """``data`` as ``printf`` octal escapes (POSIX: dash and busybox read them alike)."""
    return "".join(f"\\{byte:03o}" for byte in data)
