"""Which ``qemu-system-riscv64`` to run, and what it is (version, CPU models, firmware).

The binary is, first found wins: a machine profile's ``qemu = "PATH"``; ``--qemu PATH``
(or ``binary`` in ``[plugin.qemu]`` of ``rvforge.toml``), which reaches the plugin as
``ctx.settings["qemu"]["binary"]``; ``$RVFORGE_QEMU``; ``qemu-system-riscv64`` on PATH.

A probe asks the binary for ``--version``, ``-cpu help`` and ``-L help`` once; the answer is
cached in ``<cache>/qemu/binaries`` keyed by the binary's path, mtime and size, so a
rebuilt or upgraded QEMU is probed again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rvforge import BuildContext, ToolMissingError, UsageError, default_cache_dir
from rvforge.net.download import write_atomic
from rvforge.userfiles import expand_user

ENV_VAR = "RVFORGE_QEMU"
PROGRAM = "qemu-system-riscv64"
PACKAGE = "qemu-system-misc"
"""The Debian package with ``qemu-system-riscv64`` up to QEMU 9 (``qemu-system-riscv`` in 10)."""
PROBE_FORMAT = 1
"""Part of the probe cache key: bump when :class:`SystemQemu` gains a field."""

MODEL_SINCE = {"max": (8, 2), "rva22s64": (9, 0), "rva22u64": (9, 0), "rva23s64": (10, 0),
               "rva23u64": (10, 0)}
"""The first QEMU release with each CPU model newer than 7.2 (for messages)."""


@dataclass(frozen=True)
class SystemQemu:
    """A probed ``qemu-system-riscv64``.

    :param path: the binary.
    :param version: its version (``10.0.2``).
    :param cpu_models: the ``-cpu`` model names it knows.
    :param data_dir: its own firmware directory when the binary does not look there by
        itself (an unpacked or relocated QEMU), passed as ``-L``; else ``None``.
    """

    path: Path
    version: str
    cpu_models: frozenset[str]
    data_dir: Path | None = None

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"[0-9]+", self.version)[:3])

    def describe(self) -> str:
        """``QEMU 10.0.2 (/opt/qemu/bin/qemu-system-riscv64)``."""
        return f"QEMU {self.version} ({self.path})"

    def base_args(self) -> list[str]:
        """The binary and the options every command line starts with."""
        return [str(self.path), *(["-L", str(self.data_dir)] if self.data_dir else [])]

    def require_model(self, model: str, machine: str) -> None:
        """Refuse a CPU model this QEMU lacks, naming the release that has it.

        :raises UsageError: (exit 2) naming this QEMU, the version needed and ``--qemu``.
        """
        if model in self.cpu_models:
            return
        since = MODEL_SINCE.get(model)
        needed = (f"it came in QEMU {'.'.join(map(str, since))}; pass --qemu PATH (or set "
                  f"{ENV_VAR}) to a QEMU {'.'.join(map(str, since))} or later"
                  if since else
                  f"pass --qemu PATH to a QEMU that has it (this one has: "
                  f"{', '.join(sorted(self.cpu_models))})")
        raise UsageError(f"machine {machine!r} needs QEMU's CPU model {model!r}, which "
                         f"{self.describe()} lacks: {needed}")


def chosen_path(options: Mapping[str, Any], ctx: BuildContext | None
                ) -> tuple[str, str] | None:
    """The QEMU path the profile ``options``, the context or the environment ask for, with
    where it came from (for messages); ``None`` for the one on PATH."""
    if options.get("qemu"):
        return str(options["qemu"]), "the machine's qemu"
    settings = ctx.settings.get("qemu") if ctx is not None else None
    if isinstance(settings, Mapping) and settings.get("binary"):
        return str(settings["binary"]), ctx.flag("qemu") if ctx is not None else "--qemu"
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR], f"${ENV_VAR}"
    return None


def system_qemu(options: Mapping[str, Any] | None = None,
                ctx: BuildContext | None = None) -> SystemQemu:
    """The probed QEMU for a profile's ``options`` (see the module docstring for the order).

    :raises UsageError: the chosen path is not an executable file.
    :raises ToolMissingError: nothing was chosen and ``qemu-system-riscv64`` is not on PATH.
    """
    return probe(locate(chosen_path(options or {}, ctx)),
                 ctx.cache_dir if ctx is not None else default_cache_dir())


def locate(choice: tuple[str, str] | None) -> Path:
    """The binary ``choice`` (a path or a program name on PATH, and where it came from)
    names; with ``None``, ``qemu-system-riscv64`` on PATH."""
    if choice is None:
        found = shutil.which(PROGRAM)
        if found is None:
            raise ToolMissingError(
                f"{PROGRAM} is not installed (not on PATH): install it with `sudo apt-get "
                f"install --no-install-recommends {PACKAGE}`, or pass --qemu PATH")
        return Path(found)
    value, source = choice
    path = expand_user(value, "--qemu")
    if "/" not in value:
        found = shutil.which(value)
        if found is None:
            raise UsageError(f"{source} {value}: no such program on PATH; give the path of "
                             f"a {PROGRAM} binary")
        path = Path(found)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise UsageError(f"{source} {value}: not an executable file; give the path of a "
                         f"{PROGRAM} binary")
    return path.absolute()


def probe(path: Path, cache_dir: Path) -> SystemQemu:
    """What ``path`` is, from the cache when the binary has not changed."""
    stat = path.stat()
    return _probe(str(path), stat.st_mtime_ns, stat.st_size, str(cache_dir))


@functools.lru_cache(maxsize=16)
def _probe(path: str, mtime_ns: int, size: int, cache_dir: str) -> SystemQemu:
    key = hashlib.sha256(f"{PROBE_FORMAT}\0{path}\0{mtime_ns}\0{size}".encode()).hexdigest()
    cache_file = Path(cache_dir, "qemu", "binaries", f"{key[:24]}.json")
    try:
        data = json.loads(cache_file.read_text())
        return SystemQemu(Path(path), str(data["version"]), frozenset(data["cpu_models"]),
                          Path(data["data_dir"]) if data["data_dir"] else None)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not probed yet, or a corrupt entry: probe again
    found = SystemQemu(Path(path), _version(path), _models(path), _data_dir(Path(path)))
    write_atomic(cache_file, json.dumps({
        "path": path, "version": found.version, "cpu_models": sorted(found.cpu_models),
        "data_dir": str(found.data_dir) if found.data_dir else None}).encode(),
        within=Path(cache_dir))
    return found


PROBE_TIMEOUT = 60.0
"""Seconds a QEMU binary has to answer one probe question."""


def _ask(path: str, *args: str) -> str:
    """What ``path ARGS`` prints (undecodable bytes replaced: the output is only searched)."""
    try:
        result = subprocess.run([path, *args], check=False, capture_output=True,
                                stdin=subprocess.DEVNULL, timeout=PROBE_TIMEOUT)
    except OSError as error:
        raise UsageError(f"{path}: cannot run it ({error.strerror}); give the path of a "
                         f"{PROGRAM} binary") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"{path}: did not answer '{' '.join(args)}' within "
                         f"{PROBE_TIMEOUT:g} s; give the path of a {PROGRAM} binary") from None
    return result.stdout.decode("utf-8", "replace")


def _version(path: str) -> str:
    text = _ask(path, "--version")
    match = re.search(r"QEMU emulator version ([0-9]+\.[0-9]+(?:\.[0-9]+)?)", text)
    if match is None:
        raise UsageError(f"{path}: not a QEMU binary (--version printed "
                         f"{text.strip()[:80]!r})")
    return match.group(1)


def _models(path: str) -> frozenset[str]:
    lines = _ask(path, "-cpu", "help").splitlines()
    # QEMU 7.2 prints one name a line; later ones indent them under "Available CPUs:"
    return frozenset(line.split()[0] for line in lines
                     if line.strip() and not line.rstrip().endswith(":"))


def _data_dir(path: Path) -> Path | None:
    """``PREFIX/share/qemu`` beside ``PREFIX/bin/qemu-system-riscv64`` when QEMU's own
    search path (``-L help``) misses it, as for a package unpacked into a directory."""
    own = path.parent.parent / "share" / "qemu"
    if not own.is_dir():
        return None
    searched = {Path(line.strip()).resolve() for line in _ask(str(path), "-L", "help")
                .splitlines() if line.strip()}
    return None if own.resolve() in searched else own.resolve()
