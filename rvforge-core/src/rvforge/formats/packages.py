"""Packages as audit inputs: wheels (and other zip archives), ``.deb`` and ``.apk``.

:func:`read_package` reads a package into a :class:`Package` whose tree holds its ELF
members (in memory, as :class:`~rvforge.tree.InlineBytes`: nothing is written to disk)
and its symbolic links, at their paths inside the package (``/numpy/_core/x.so`` for a
wheel, ``/usr/lib/riscv64-linux-gnu/libz.so.1`` for a ``.deb``). Other members are read
(a wheel's are checked against its ``RECORD``) but not kept: a package is audited for the
CPU, not as a root filesystem. Every name is validated as in a tarball (no ``..``, no
absolute names, no links that climb out), and sizes are bounded (``MAX_UNPACKED``,
``MAX_RATIO`` in :mod:`rvforge.formats.package`) so a zip bomb is refused before it is
inflated.
"""

from __future__ import annotations

import lzma
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

from rvforge.errors import InputError
from rvforge.formats.compression import is_corrupt_stream_error

# the shared base lived here before 0.3 (:mod:`rvforge.formats.package`); still importable
from rvforge.formats.package import (
    MAX_RATIO,
    MAX_UNPACKED,
    MemberSink,
    Package,
    read_tar_members,
)

__all__ = ["MAX_RATIO", "MAX_UNPACKED", "PACKAGE_KINDS", "MemberSink", "Package", "read_package",
           "read_tar_members"]

PACKAGE_KINDS = ("wheel", "zip", "deb", "apk")


def read_package(path: Path, kind: str) -> Package:
    """Read ``path``, a package of ``kind`` (:data:`PACKAGE_KINDS`, as
    :func:`~rvforge.formats.sniff.sniff` tells). Raises :class:`InputError` (one line:
    the file, what is wrong) for anything malformed, truncated or hostile."""
    if kind not in PACKAGE_KINDS:
        raise ValueError(f"not a package kind: {kind!r}")
    try:
        if kind == "deb":
            from rvforge.formats.deb import read_deb

            return read_deb(path)
        if kind == "apk":
            from rvforge.formats.apk import read_apk

            return read_apk(path)
        from rvforge.formats.wheel import read_zip

        return read_zip(path, wheel=kind == "wheel")
    except InputError:
        raise
    except _CORRUPT as error:  # what the zip, tar and decompression modules raise on garbage
        raise InputError(f"{path}: truncated or corrupt {kind} ({_describe(error)}); "
                         "download or build it again") from None
    except Exception as error:
        if is_corrupt_stream_error(error):
            raise InputError(f"{path}: truncated or corrupt {kind} ({_describe(error)}); "
                             "download or build it again") from None
        raise


# zipfile raises NotImplementedError (unknown compression) and RuntimeError (encryption)
_CORRUPT = (OSError, EOFError, ValueError, IndexError, OverflowError, UnicodeError,
            NotImplementedError, RuntimeError, struct.error, zlib.error, lzma.LZMAError,
            tarfile.TarError, zipfile.BadZipFile)


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text if len(text) <= 160 else text[:160] + "…"
