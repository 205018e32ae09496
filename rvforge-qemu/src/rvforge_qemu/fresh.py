"""What a guest is told after it is restored from a snapshot (or, on a snapshot-capable
cold boot, right after its ready state was saved): fresh randomness and the host's time,
then the shares of this run mounted.

It travels as one ``RUN`` request of the init protocol (:mod:`rvforge.protocol`), so the
guest needs nothing it did not have at boot: the script writes a small static program
(:func:`rvforge_qemu.stub.assemble_fresh`, assembled anew for each restore with its seed
and time inside) to the guest's ``/tmp`` with ``printf`` octal escapes, runs it, removes
it, and mounts each share (the 9p device was present but unmounted when the state was
saved: QEMU cannot migrate a mounted 9p export, and the host directory behind it is
chosen per run).
"""

from __future__ import annotations

import os
import shlex
import time

from rvforge_qemu.devices import Share
from rvforge_qemu.stub import assemble_fresh

SEED_BYTES = 64
"""Host randomness handed to each restored guest (512 bits: a full CRNG reseed)."""
PROGRAM = "/tmp/.rvforge-fresh"
SHARE_OPTIONS = "trans=virtio,version=9p2000.L,msize=262144"
"""The mount options rvforge's ``/init`` uses for a share at boot."""


def fresh_script(shares: tuple[Share, ...]) -> str:
    """The shell script making the guest fresh and mounting ``shares``; exits non-zero
    (with one line on stderr) if a step fails."""
    now = time.time_ns()
    program = assemble_fresh(os.urandom(SEED_BYTES), now // 1_000_000_000,
                             now % 1_000_000_000)
    escaped = "".join(f"\\{byte:03o}" for byte in program)
    lines = [f"printf '{escaped}' > {PROGRAM} && chmod 700 {PROGRAM} && {PROGRAM}",
             "status=$?", f"rm -f {PROGRAM}",
             '[ "$status" = 0 ] || { echo "rvforge: cannot refresh the restored guest" >&2; '
             'exit "$status"; }']
    for share in shares:
        options = SHARE_OPTIONS + (",ro" * share.readonly)
        guest = shlex.quote(share.guest)
        lines.append(f"mkdir -p {guest} && mount -t 9p -o {options} {share.tag} {guest} "
                     f"|| {{ echo 'rvforge: cannot mount the shared directory {share.tag} "
                     f"on {share.guest}' >&2; exit 1; }}")
    return "\n".join(lines) + "\n"
