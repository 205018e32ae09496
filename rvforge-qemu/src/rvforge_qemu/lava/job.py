"""A LAVA job definition for one machine: the data (:class:`JobSpec`) and the document.

The guest side: rvforge's ``/init`` with ``rvforge.shell=1`` on the kernel command line
gives an interactive shell on the serial console instead of serving rvforge's virtio-serial
protocol (LAVA's ``qemu`` device has only the console). Its prompt is set through the
kernel passing ``PS1=`` to init's environment, so LAVA matches a prompt no output contains.
The command runs between two marker lines; the second carries its exit status, which the
``interactive`` test's success and failure patterns turn into the test case's result (an
overlay for ``lava-test-shell`` definitions would need LAVA to unpack and repack the
initramfs, and a userland with its runner's tools).
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from rvforge.protocol import SHELL_ARGUMENT

PROMPT = "rvforge-lava#"
"""The guest shell's prompt (``PS1``; no spaces, which the kernel command line would split)."""
PROMPT_PATTERN = f"(?<!=){PROMPT}"
"""What LAVA waits for: the prompt, but not the kernel printing its command line's
``PS1=rvforge-lava#`` (LAVA's prompts are regular expressions)."""
CASE = "command"
"""The LAVA test case of the command (in the suite ``0_rvforge-<machine>``)."""
SUITE_PREFIX = "rvforge-"
TOKEN_PATTERN = re.compile(r"RVFORGE STATUS-([0-9a-f]{12}) ")
"""Finds a job's marker token in the line LAVA typed (see :class:`Markers`)."""
DEPLOY_SECONDS = 300
BOOT_ATTEMPTS = 2
"""QEMU 7.2 under TCG now and then stalls after OpenSBI's banner; LAVA boots again once,
as rvforge's own launcher restarts a kernel that never prints."""
FINALIZE_SECONDS = 60


@dataclass(frozen=True)
class Markers:
    """The lines around the command's output: ``RVFORGE-BEGIN-<token>`` before it and
    ``RVFORGE-STATUS-<token> <status>`` after it.

    The token is derived from the job, so output that happens to hold rvforge's markers
    (a log, a test of rvforge) cannot end the command early; ``printf`` writes each marker
    from two words, so the echo of the typed line never matches one.
    """

    token: str

    @property
    def begin(self) -> str:
        return f"RVFORGE-BEGIN-{self.token}"

    @property
    def status(self) -> re.Pattern[str]:
        """Matches the status line; group 1 is the status."""
        return re.compile(rf"^RVFORGE-STATUS-{self.token} (\d+)\s*$")

    def line(self, argv: tuple[str, ...]) -> str:
        """The one line typed at the guest's prompt: the markers around ``argv`` (stdin
        from ``/dev/null``, as ``rvforge run`` does) and its status."""
        return (f"printf '%s-%s\\n' RVFORGE BEGIN-{self.token}; {shlex.join(argv)} "
                f"</dev/null; printf '%s-%s %s\\n' RVFORGE STATUS-{self.token} $?")

    @classmethod
    def of_typed(cls, typed: str) -> Markers | None:
        """The markers of the line LAVA typed (from a log), if it is rvforge's."""
        found = TOKEN_PATTERN.search(typed)
        return cls(found.group(1)) if found else None


@dataclass(frozen=True)
class Image:
    """A file the worker downloads: its URL, sha256 and the QEMU argument naming it."""

    url: str
    sha256: str
    image_arg: str


@dataclass(frozen=True)
class JobSpec:
    """Everything one machine's job says.

    :param machine: the rvforge machine profile's name.
    :param cpu: QEMU's ``-cpu`` string (model and properties).
    :param memory_mb: RAM in MB.
    :param cpus: virtual CPUs.
    :param kernel: the kernel's URL and sha256.
    :param initramfs: the image's URL and sha256.
    :param append: the kernel command line's words.
    :param argv: the command and its arguments.
    :param timeout: seconds for the boot, and again for the command.
    :param qemu_since: the oldest QEMU release with the profile's CPU model.
    :param extra_options: more QEMU arguments (the profile's ``bios`` and ``extra_args``).
    :param image_name: the image's file name (for the job's name).
    """

    machine: str
    cpu: str
    memory_mb: int
    cpus: int
    kernel: Image
    initramfs: Image
    append: tuple[str, ...]
    argv: tuple[str, ...]
    timeout: float
    qemu_since: str
    extra_options: tuple[str, ...] = field(default=())
    image_name: str = "image"

    @property
    def suite(self) -> str:
        """The interactive script's name; LAVA reports its cases in ``0_<suite>``."""
        return f"{SUITE_PREFIX}{self.machine}"

    @property
    def markers(self) -> Markers:
        """This job's output markers (the token: a digest of what the job runs)."""
        digest = hashlib.sha256("\0".join((
            self.machine, self.cpu, self.kernel.sha256, self.initramfs.sha256,
            *self.append, *self.argv)).encode())
        return Markers(digest.hexdigest()[:12])

    @property
    def qemu_options(self) -> list[str]:
        """QEMU options besides ``-cpu``, ``-machine``, ``-m`` (the device type's)."""
        return [f"-smp {self.cpus}", "-no-reboot", *self.extra_options]


def kernel_words(base: tuple[str, ...]) -> tuple[str, ...]:
    """``base`` plus what the LAVA boot needs: the console shell and its prompt."""
    return (*base, SHELL_ARGUMENT, f"PS1={PROMPT}")


def job_document(spec: JobSpec) -> dict[str, Any]:
    """The job as LAVA's YAML holds it (a plain dict; ``render`` writes it)."""
    boot = {"seconds": int(spec.timeout)}
    markers = spec.markers
    status = f"RVFORGE-STATUS-{markers.token}"
    return {
        "job_name": f"rvforge: {spec.image_name} on {spec.machine}: {shlex.join(spec.argv)}"
                    [:200],
        "device_type": "qemu",
        "visibility": "public",
        "priority": "medium",
        "context": {"arch": "riscv64", "machine": "virt", "cpu": spec.cpu,
                    "memory": spec.memory_mb, "extra_options": spec.qemu_options},
        "metadata": {"rvforge.machine": spec.machine, "rvforge.qemu_min": spec.qemu_since,
                     "rvforge.command": shlex.join(spec.argv)},
        "timeouts": {
            "job": {"seconds": job_seconds(spec)},
            "action": boot,
            "connections": {"lava-test-interactive": {"seconds": int(spec.timeout)}},
        },
        "actions": [
            {"deploy": {
                "to": "tmpfs", "timeout": {"seconds": DEPLOY_SECONDS},
                "images": {
                    "kernel": {"url": spec.kernel.url, "sha256sum": spec.kernel.sha256,
                               "image_arg": spec.kernel.image_arg},
                    "ramdisk": {"url": spec.initramfs.url, "sha256sum": spec.initramfs.sha256,
                                "image_arg": spec.initramfs.image_arg},
                }}},
            {"boot": {"method": "qemu", "media": "tmpfs", "timeout": boot,
                      "failure_retry": BOOT_ATTEMPTS,
                      "prompts": [PROMPT_PATTERN]}},
            {"test": {"timeout": boot, "interactive": [{
                "name": spec.suite, "prompts": [PROMPT_PATTERN],
                "script": [{"command": markers.line(spec.argv), "name": CASE,
                            "successes": [{"message": f"{status} 0\\b"}],
                            "failures": [{"message": f"{status} [1-9][0-9]*"}]}],
            }]}},
        ],
    }


def kernel_arg(append: tuple[str, ...]) -> str:
    """The kernel's ``image_arg``: LAVA substitutes ``{kernel}`` with the downloaded file."""
    return f'-kernel {{kernel}} -append "{" ".join(append)}"'


def job_seconds(spec: JobSpec) -> int:
    """The whole job's limit: the download, each boot attempt, the command and LAVA's
    cleanup."""
    return DEPLOY_SECONDS + (BOOT_ATTEMPTS + 1) * int(spec.timeout) + FINALIZE_SECONDS


def render(documents: list[dict[str, Any]]) -> str:
    """YAML text of one job, or of several as a multi-document stream."""
    import yaml  # only when writing a job: the CLI starts without it

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # a job is read by people: no &id001 anchors

    return yaml.dump_all(documents, Dumper=Dumper, sort_keys=False, width=1000,
                         explicit_start=len(documents) > 1)
