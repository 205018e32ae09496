"""Whether an image's first program can start, checked on the host before booting it.

The kernel runs ``/init`` of an initramfs (rvforge's boot of a disk image runs the disk's
``/bin/sh``). When that program is missing, not executable, built for another CPU, or its
interpreter is missing, the kernel panics with a number (``error -8``, ``-13``, ``VFS:
Unable to mount root fs``) after a minute of booting. :func:`init_problem` finds each of
these in milliseconds from the image's headers (:mod:`rvforge.imagefiles`): the program
resolved through symlinks is a regular executable file that is a RISC-V ELF, or a ``#!``
script whose interpreter passes the same check (four levels, as the kernel allows); an
ELF's ``PT_INTERP`` (the dynamic loader) is present, executable and RISC-V.
"""

from __future__ import annotations

import stat
import struct
from dataclasses import dataclass

from rvforge.artifacts import Artifact
from rvforge.errors import UnbootableImageError
from rvforge.imagefiles import ImageFiles, ImageNode, image_files
from rvforge.riscv.elf import E_MACHINES, EM_RISCV, PT_INTERP

__all__ = ["InitProblem", "boot_program", "check_image", "init_problem"]

MAX_SCRIPT_DEPTH = 4
"""``#!`` interpreters the kernel follows in a row (``BINPRM_MAX_RECURSION``)."""
MACHINE_NAMES = {"EM_X86_64": "an x86-64", "EM_386": "an i386", "EM_AARCH64": "an AArch64",
                 "EM_ARM": "a 32-bit Arm", "EM_PPC64": "a POWER", "EM_S390": "an s390x",
                 "EM_LOONGARCH": "a LoongArch", "EM_MIPS": "a MIPS"}
REBUILD = ("build it for riscv64 (riscv64-linux-gnu-gcc, or rvforge build with a riscv64 "
           "provider)")


@dataclass(frozen=True, slots=True)
class InitProblem:
    """Why the image's first program cannot start.

    :param problem: what is wrong, naming the file (and what the kernel would do).
    :param fix: what to do about it.
    """

    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}"


def boot_program(artifact: Artifact) -> str:
    """The program the kernel starts first for ``artifact``: ``/init`` of an initramfs,
    ``/bin/sh`` of a disk image (see :mod:`rvforge_qemu.stub`)."""
    return "/bin/sh" if artifact.kind == "disk" else "/init"


def check_image(artifact: Artifact, *, hint: str = "") -> None:
    """Raise :class:`~rvforge.errors.UnbootableImageError` (exit 2) naming the problem
    and its fix when ``artifact``'s first program cannot start; ``hint`` is added in
    parentheses (how to skip the check)."""
    files = image_files(artifact)
    found = init_problem(files, boot_program(artifact))
    if found is not None:
        raise UnbootableImageError(f"{files.label}: {found}" + (f" ({hint})" if hint else ""))


def init_problem(files: ImageFiles, program: str = "/init") -> InitProblem | None:
    """What stops ``program`` of the image from starting, or ``None`` when nothing does."""
    path, node = files.resolve(program)
    if node is None:
        return _missing(files, program, path)
    return _program_problem(files, program, path, node, depth=0)


def _missing(files: ImageFiles, program: str, reached: str) -> InitProblem:
    if program == "/init":
        where = "" if reached == program else f" (it leads to {reached}, which is missing)"
        return InitProblem(
            f"there is no /init{where}: the kernel would panic with 'VFS: Unable to mount "
            "root fs'",
            "add an executable /init (rvforge build adds its own through the init overlay)")
    where = "" if reached == program else f" (it leads to {reached})"
    return InitProblem(f"there is no {program}{where}, which the boot runs first",
                       f"add {program} to the image")


def _program_problem(files: ImageFiles, name: str, path: str, node: ImageNode,
                     depth: int) -> InitProblem | None:
    shown = name if path == name else f"{name} (-> {path})"
    if not node.is_file:
        return InitProblem(f"{shown} is {_kind(node.mode)}, not a program",
                           f"put an executable file at {name}")
    if not node.executable:
        return InitProblem(
            f"{shown} is not executable (mode {stat.S_IMODE(node.mode):04o}): the kernel "
            "would fail to run it (error -13)", f"make it executable (chmod 755 {path})")
    if node.head.startswith(b"#!"):
        return _script_problem(files, shown, node, depth)
    if not node.head.startswith(b"\x7fELF"):
        return InitProblem(
            f"{shown} is neither an ELF executable nor a #! script (it starts with "
            f"{node.head[:8]!r}): the kernel would fail to run it (error -8)",
            f"put a riscv64 program or a script at {path}")
    machine = _elf_machine(node.head)
    if machine != EM_RISCV:
        return InitProblem(
            f"{shown} is {_machine_text(machine)}, not RISC-V: the riscv64 kernel cannot "
            "run it (error -8)", REBUILD)
    interp = _elf_interpreter(node.head)
    if interp is None:
        return None
    reached, loader = files.resolve(interp)
    if loader is None:
        return InitProblem(
            f"{shown} needs the dynamic loader {interp}, which is not in the image",
            "add the C library it was linked against (musl: ld-musl-riscv64.so.1, glibc: "
            "ld-linux-riscv64-lp64d.so.1), or link it statically (-static)")
    if not loader.is_file or not loader.executable:
        what = _kind(loader.mode) if not loader.is_file else \
            f"not executable (mode {stat.S_IMODE(loader.mode):04o})"
        return InitProblem(f"{shown} needs the dynamic loader {interp}, which is {what}",
                           f"make {reached} an executable file")
    if loader.head.startswith(b"\x7fELF") and _elf_machine(loader.head) != EM_RISCV:
        return InitProblem(
            f"{shown} needs the dynamic loader {interp}, which is "
            f"{_machine_text(_elf_machine(loader.head))}, not RISC-V", REBUILD)
    return None


def _script_problem(files: ImageFiles, shown: str, node: ImageNode,
                    depth: int) -> InitProblem | None:
    line = node.head[2:].split(b"\n", 1)[0].strip()
    words = line.decode("utf-8", "surrogateescape").split()
    if not words:
        return InitProblem(f"{shown} starts with '#!' but names no interpreter",
                           "write the interpreter's path after #! (e.g. #!/bin/sh)")
    interp = words[0]
    if depth + 1 >= MAX_SCRIPT_DEPTH:
        return InitProblem(f"{shown} is a script whose interpreters are scripts "
                           f"{MAX_SCRIPT_DEPTH} levels deep: the kernel stops there",
                           "name a program as the interpreter")
    reached, found = files.resolve(interp)
    if found is None:
        return InitProblem(f"{shown} is a script for {interp}, which is not in the image",
                           f"add {interp} (busybox provides /bin/sh) or change its #! line")
    return _program_problem(files, interp, reached, found, depth + 1)


def _elf_machine(head: bytes) -> int | None:
    """``e_machine`` of an ELF header, or ``None`` if too short or not little/big-endian."""
    if len(head) < 20 or head[5] not in (1, 2):
        return None
    return int(struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)[0])


def _elf_interpreter(head: bytes) -> str | None:
    """``PT_INTERP``'s path when the program headers and the path lie within ``head``."""
    if len(head) < 64 or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    end = "<" if head[5] == 1 else ">"
    wide = head[4] == 2
    phoff, phentsize, phnum = (struct.unpack_from(end + "Q", head, 32)[0],
                               *struct.unpack_from(end + "HH", head, 54)) if wide else \
        (struct.unpack_from(end + "I", head, 28)[0], *struct.unpack_from(end + "HH", head, 42))
    for index in range(min(phnum, 256)):
        at = phoff + index * phentsize
        if at + (56 if wide else 32) > len(head):
            return None
        if struct.unpack_from(end + "I", head, at)[0] != PT_INTERP:
            continue
        offset, size = (struct.unpack_from(end + "Q", head, at + 8)[0],
                        struct.unpack_from(end + "Q", head, at + 32)[0]) if wide else \
            (struct.unpack_from(end + "I", head, at + 4)[0],
             struct.unpack_from(end + "I", head, at + 16)[0])
        if not 0 < size <= 4096 or offset + size > len(head):
            return None
        return head[offset:offset + size].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    return None


def _machine_text(machine: int | None) -> str:
    if machine is None:
        return "an ELF file whose header is unreadable"
    name = E_MACHINES.get(machine, f"machine {machine}")
    return f"{MACHINE_NAMES[name]} ELF ({name})" if name in MACHINE_NAMES else \
        f"an ELF for {name}"


def _kind(mode: int) -> str:
    return {stat.S_IFDIR: "a directory", stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
            stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symlink"}.get(stat.S_IFMT(mode),
                                                                       "not a regular file")
