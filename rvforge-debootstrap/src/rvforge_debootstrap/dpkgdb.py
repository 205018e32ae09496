"""The dpkg database of an unpacked tree, as ``dpkg --unpack`` leaves it.

For each package: a ``var/lib/dpkg/status`` paragraph (its ``control`` file with
``Status: install ok unpacked`` and, for conffiles, ``Conffiles:`` with their MD5), and
``var/lib/dpkg/info/<pkg>.list``, ``.md5sums``, ``.conffiles``, ``.triggers``, ``.shlibs``,
``.symbols``, ``.templates`` and the maintainer scripts (``preinst``, ``postinst``,
``prerm``, ``postrm``, ``config``; mode 0755). ``Multi-Arch: same`` packages use
``<pkg>:<arch>`` in info file names, as dpkg does. ``dpkg --configure -a`` in the image
(first boot, a VM, or a binfmt chroot) takes it from there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from rvforge import Tree

from rvforge_debootstrap import deb822

DPKG = "/var/lib/dpkg"
SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config")
INFO_FILES = ("md5sums", "conffiles", "triggers", "shlibs", "symbols", "templates")
UNPACKED = "install ok unpacked"


@dataclass
class Unpacked:
    """One package as extracted: its control members and the paths its data.tar holds."""

    name: str
    arch: str
    multi_arch: str
    control: dict[str, bytes]
    listed: list[str] = field(default_factory=list)

    @property
    def info_name(self) -> str:
        return f"{self.name}:{self.arch}" if self.multi_arch == "same" else self.name


def write_database(tree: Tree, packages: list[Unpacked], *, status: str = UNPACKED) -> None:
    """Write the dpkg database for ``packages`` (already extracted into ``tree``)."""
    for path in (DPKG, f"{DPKG}/info", f"{DPKG}/updates", f"{DPKG}/triggers",
                 f"{DPKG}/alternatives", f"{DPKG}/parts"):
        tree.add_dir(path)
    paragraphs = []
    for pkg in packages:
        paragraphs.append(status_paragraph(tree, pkg, status))
        info = f"{DPKG}/info/{pkg.info_name}"
        tree.add_file(f"{info}.list", "".join(f"{p}\n" for p in pkg.listed).encode())
        for name in SCRIPTS:
            if name in pkg.control:
                tree.add_file(f"{info}.{name}", pkg.control[name], mode=0o755)
        for name in INFO_FILES:
            if name in pkg.control:
                tree.add_file(f"{info}.{name}", pkg.control[name])
    paragraphs.sort(key=lambda p: (p["Package"], p.get("Architecture", "")))
    tree.add_file(f"{DPKG}/status", "\n".join(p.dump() for p in paragraphs).encode())
    tree.add_file(f"{DPKG}/info/format", b"1\n")
    for name in ("available", "diversions", "statoverride"):
        tree.add_file(f"{DPKG}/{name}", b"")


def status_paragraph(tree: Tree, pkg: Unpacked, status: str) -> deb822.Paragraph:
    """``pkg``'s control paragraph with ``Status`` after ``Package`` and ``Conffiles``."""
    control = deb822.parse_one(pkg.control["control"].decode("utf-8", errors="replace"))
    para = deb822.Paragraph()
    for key, value in control.items():
        para[key] = value
        if key == "Package":
            para["Status"] = status
    lines = []
    for line in pkg.control.get("conffiles", b"").decode(errors="replace").splitlines():
        path = line.strip()  # "remove-on-upgrade /etc/x" lines name no installed file
        if path.startswith("/") and tree.is_file(path):
            lines.append(f"{path} {hashlib.md5(tree.read_bytes(path)).hexdigest()}")
    if lines:
        para["Conffiles"] = "\n" + "\n".join(lines)
    return para
