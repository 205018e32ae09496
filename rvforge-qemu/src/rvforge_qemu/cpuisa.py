"""The ISA a QEMU CPU implements, asked of the installed QEMU itself.

QEMU boots nothing with ``-machine virt,dumpdtb=FILE``: it writes the device tree it would
hand the guest and exits. The first CPU node's ``riscv,isa`` (or, on QEMU 8.2+,
``riscv,isa-base`` with ``riscv,isa-extensions``) is the ISA string the guest kernel sees.
Results are cached under ``<cache>/qemu/isa`` by QEMU binary (path, mtime, size, version)
and CPU string.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from pathlib import Path

from rvforge import BuildContext, InputError, Machine

from rvforge_qemu.fdt import Node, parse_fdt
from rvforge_qemu.profiles import settings_of
from rvforge_qemu.qemubin import SystemQemu, system_qemu
from rvforge_qemu.tools import startup_error


def machine_isa(machine: Machine, ctx: BuildContext) -> str:
    """The ISA of ``machine``'s CPU under the QEMU it runs on (see
    :mod:`rvforge_qemu.qemubin`); a CPU model that QEMU lacks is refused (exit 2)."""
    settings = settings_of(machine)
    qemu = system_qemu(machine.options, ctx)
    qemu.require_model(settings.model, machine.name)
    return cpu_isa(settings.cpu, ctx, machine=machine.name, qemu=qemu)


def cpu_isa(cpu: str, ctx: BuildContext, *, machine: str = "",
            qemu: SystemQemu | None = None) -> str:
    """The ISA string of ``-cpu cpu`` on ``qemu`` (default: the one :func:`system_qemu`
    picks), cached; a CPU QEMU rejects raises an error quoting QEMU."""
    qemu = qemu or system_qemu(None, ctx)
    version = qemu.version
    stat = qemu.path.stat()
    key = hashlib.sha256(f"{qemu.path}\0{stat.st_mtime_ns}\0{stat.st_size}\0{version}\0{cpu}"
                         .encode()).hexdigest()[:20]
    cache_file = ctx.cache("qemu", "isa") / f"{key}.json"
    if cache_file.is_file():
        try:
            return str(json.loads(cache_file.read_text())["isa"])
        except (ValueError, KeyError):
            pass  # corrupt cache entry: probe again
    isa = _probe(qemu, cpu, machine or cpu)
    ctx.log.debug("probed CPU ISA", cpu=cpu, qemu=version, isa=isa)
    tmp = cache_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"qemu": version, "cpu": cpu, "isa": isa}))
    tmp.replace(cache_file)
    return isa


def _probe(qemu: SystemQemu, cpu: str, label: str) -> str:
    with tempfile.TemporaryDirectory(prefix="rvforge-dtb-") as tmp:
        dtb = Path(tmp) / "virt.dtb"
        result = subprocess.run(
            [*qemu.base_args(), "-machine", f"virt,dumpdtb={dtb}", "-cpu", cpu, "-smp", "1",
             "-display", "none", "-nodefaults"],
            check=False, capture_output=True, text=True, timeout=60,
        )
        if result.returncode != 0 or not dtb.is_file():
            raise startup_error(result.stderr, f"machine {label!r} (-cpu {cpu})")
        return with_vlen(isa_of_dtb(dtb.read_bytes()), cpu)


def isa_of_dtb(blob: bytes) -> str:
    """The ISA string of the first CPU in a device tree blob."""
    cpus = parse_fdt(blob).child("cpus")
    cpu: Node | None = None
    if cpus is not None:
        cpu = next((c for c in cpus.children if c.name.startswith("cpu@")), None)
    if cpu is None:
        raise InputError("device tree has no /cpus/cpu@N node")
    isa = cpu.string("riscv,isa")
    if isa:
        return isa.lower()
    base = cpu.string("riscv,isa-base")
    extensions = cpu.strings("riscv,isa-extensions")
    if not base:
        raise InputError(f"device tree CPU {cpu.name} has neither riscv,isa nor "
                         "riscv,isa-base")
    singles = "".join(e for e in extensions if len(e) == 1 and e not in base[4:])
    multis = [e for e in extensions if len(e) > 1]
    return "_".join([base.lower() + singles, *multis])


def with_vlen(isa: str, cpu: str) -> str:
    """Add ``zvl<VLEN>b`` for a vector CPU whose string sets ``vlen`` above 128: the
    device tree does not say VLEN, yet code built for ``zvl256b`` needs it."""
    match = re.search(r"(?:^|,)vlen=([0-9]+)", cpu)
    if not match or int(match.group(1)) <= 128 or f"zvl{match.group(1)}b" in isa:
        return isa
    return f"{isa}_zvl{match.group(1)}b"
