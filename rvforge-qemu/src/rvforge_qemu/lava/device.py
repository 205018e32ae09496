"""The device dictionary ``lava-run`` needs to boot a job on this machine's QEMU.

A LAVA server renders it from the ``qemu`` device-type template and the job's ``context``;
``lava-run`` alone takes it rendered. This one holds what that template gives for
``arch: riscv64`` (``-cpu``, ``-machine virt``, ``-m``, ``-nographic``, ``-monitor none``,
the context's ``extra_options``), with the QEMU rvforge would run (and its firmware
directory) and without a network device: the guest needs none.
"""

from __future__ import annotations

import shlex
from typing import Any

from rvforge_qemu.lava.job import JobSpec
from rvforge_qemu.qemubin import SystemQemu


def device_dictionary(spec: JobSpec, qemu: SystemQemu) -> dict[str, Any]:
    """The rendered device dictionary for ``spec`` booting under ``qemu``."""
    firmware = [f"-L {shlex.quote(str(qemu.data_dir))}"] if qemu.data_dir else []
    return {
        "available_architectures": ["riscv64"],
        "constants": {
            "posix": {"lava_test_sh_cmd": "/bin/sh", "lava_test_results_dir": "/lava-%s",
                      "lava_test_shell_file": "~/.bashrc"},
            "shutdown-message": "The system is going down for reboot NOW",
            "kernel-start-message": "Linux version [0-9]",
            "default-shell-prompt": "lava-test: # ",
            "spawn_maxread": "4092",
            "failure_retry": 1,
            "boot_retry": 0,
        },
        "actions": {
            "deploy": {"connections": {"serial": None},
                       "methods": {"image": {"parameters": {}}}},
            "boot": {"connections": {"serial": None},
                     "methods": {"minimal": None, "qemu": {"parameters": {
                         "command": str(qemu.path),
                         "options": [*firmware, f"-cpu {spec.cpu}", "-machine virt",
                                     "-nographic", "-nic none", f"-m {spec.memory_mb}",
                                     "-monitor none"],
                         "extra": spec.qemu_options,
                     }}}},
        },
        "parameters": {},
        "timeouts": {"actions": {}, "connections": {}},
    }
