"""From a machine profile and ``rvforge run``'s choices to a :class:`~.job.JobSpec`.

The job gets what ``rvforge run`` would use on this machine: the profile's ``-cpu`` string,
firmware and extra QEMU arguments, its memory (raised as ``qemu-virt`` raises it for a large
initramfs) and CPUs, the kernel :func:`~rvforge_qemu.kernels.resolve_kernel` picks and the
same kernel command line.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from rvforge import Artifact, BuildContext, Kernel, Machine, UsageError

from rvforge_qemu.kernels import resolve_kernel
from rvforge_qemu.lava.job import Image, JobSpec, kernel_arg, kernel_words
from rvforge_qemu.options import DEFAULT_TIMEOUT
from rvforge_qemu.prepared import KERNEL_ARGS, memory_for_initrd
from rvforge_qemu.profiles import settings_of
from rvforge_qemu.qemubin import MODEL_SINCE

OLDEST_QEMU = "7.2"
"""The oldest QEMU rvforge boots its base profiles with (Debian 12's)."""


@dataclass(frozen=True)
class JobOptions:
    """What ``rvforge lava job|run`` take besides the image, machine and command.

    :param kernel: a kernel image path, a kernel source name, or ``auto``.
    :param timeout: seconds for the boot, and again for the command.
    :param memory: RAM in MB, overriding the profile's.
    :param cpus: CPUs, overriding the profile's.
    :param append: more kernel command-line words (one shell-quoted string).
    :param artifact_url: where the worker finds the image and kernel (a directory URL);
        ``None``: ``file://`` URLs of the files here.
    """

    kernel: str = "auto"
    timeout: float = DEFAULT_TIMEOUT
    memory: int | None = None
    cpus: int | None = None
    append: str = ""
    artifact_url: str | None = None


def plan_job(image: Path, machine: Machine, argv: list[str], options: JobOptions,
             kernel: Kernel) -> JobSpec:
    """The job booting ``image`` with ``kernel`` (:func:`job_kernel`) on ``machine`` and
    running ``argv``.

    :raises UsageError: not an initramfs, a profile with shares or networking (a LAVA
        worker has neither), or kernel words LAVA's command line cannot carry.
    """
    artifact = initramfs_of(image)
    settings = settings_of(machine)
    if settings.shares or settings.net or settings.forwards:
        raise UsageError(f"machine {machine.name!r} has shares or networking, which a LAVA "
                         "job cannot give; pick a profile without them")
    try:
        extra = tuple(shlex.split(options.append))
    except ValueError as error:
        raise UsageError(f"--append {options.append!r}: {error}") from None
    append = kernel_words((*KERNEL_ARGS, *settings.append, *extra))
    if any(set(word) & set('"{} \t\n') for word in append):
        raise UsageError("a kernel command-line word with a quote, a brace or a space cannot "
                         "go into a LAVA job (LAVA quotes and substitutes the command line)")
    memory = memory_for_initrd(options.memory or machine.memory_mb, artifact.size)
    since = MODEL_SINCE.get(settings.model)
    return JobSpec(
        machine=machine.name, cpu=settings.cpu, memory_mb=memory,
        cpus=options.cpus or machine.cpus,
        kernel=Image(_url(kernel.image, options.artifact_url), _sha256(kernel.image),
                     kernel_arg(append)),
        initramfs=Image(_url(image, options.artifact_url), _sha256(image),
                        "-initrd {ramdisk}"),
        append=append, argv=tuple(argv), timeout=options.timeout,
        qemu_since=".".join(map(str, since)) if since else OLDEST_QEMU,
        extra_options=(f"-bios {shlex.quote(settings.bios)}",
                       *(shlex.quote(word) for word in settings.extra_args)),
        image_name=image.name)


def initramfs_of(image: Path) -> Artifact:
    """``image`` as an artifact, refused unless it is an initramfs."""
    artifact = Artifact.of_image(image)
    if artifact.kind != "initramfs":
        raise UsageError(f"{image}: a LAVA job boots an initramfs, not a {artifact.kind} "
                         "image; build one with -o NAME.cpio.gz")
    return artifact


def job_kernel(options: JobOptions, ctx: BuildContext) -> Kernel:
    """The kernel ``rvforge run`` would boot with ``--kernel options.kernel``."""
    return resolve_kernel(options.kernel, ctx)


def _url(path: Path, base: str | None) -> str:
    if base is None:  # LAVA opens a file:// URL's path as written (no percent-decoding)
        return f"file://{path.resolve()}"
    return f"{base.rstrip('/')}/{quote(path.name)}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
