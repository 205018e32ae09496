"""A small reader for flattened device trees (the ``.dtb`` QEMU's ``dumpdtb`` writes).

Only what rvforge needs: walk the structure block and return nodes with their raw
properties. Format: the Devicetree Specification, chapter 5 (header, structure block of
big-endian tokens, strings block).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rvforge import InputError

MAGIC = 0xD00DFEED
BEGIN_NODE, END_NODE, PROP, NOP, END = 1, 2, 3, 4, 9


@dataclass
class Node:
    """One device-tree node: its name (``cpu@0``), properties and children."""

    name: str
    properties: dict[str, bytes] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def child(self, name: str) -> Node | None:
        """The child called ``name`` (``cpus``), or ``None``."""
        return next((c for c in self.children if c.name == name), None)

    def string(self, prop: str) -> str | None:
        """Property ``prop`` as one string (the first of a string list), or ``None``."""
        value = self.properties.get(prop)
        return None if value is None else value.split(b"\0")[0].decode()

    def strings(self, prop: str) -> list[str]:
        """Property ``prop`` as a string list (empty when absent)."""
        value = self.properties.get(prop, b"")
        return [s.decode() for s in value.rstrip(b"\0").split(b"\0") if s]


def parse_fdt(blob: bytes) -> Node:
    """The root node of the device tree in ``blob``."""
    if len(blob) < 40 or struct.unpack_from(">I", blob)[0] != MAGIC:
        raise InputError("not a flattened device tree (bad magic)")
    _, _, off_struct, off_strings = struct.unpack_from(">4I", blob)
    stack: list[Node] = []
    root: Node | None = None
    pos = off_struct
    while True:
        (token,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if token == BEGIN_NODE:
            end = blob.index(b"\0", pos)
            node = Node(blob[pos:end].decode())
            pos = _align(end + 1)
            if stack:
                stack[-1].children.append(node)
            else:
                root = node
            stack.append(node)
        elif token == END_NODE:
            stack.pop()
        elif token == PROP:
            length, name_off = struct.unpack_from(">II", blob, pos)
            pos += 8
            name_end = blob.index(b"\0", off_strings + name_off)
            name = blob[off_strings + name_off:name_end].decode()
            stack[-1].properties[name] = blob[pos:pos + length]
            pos = _align(pos + length)
        elif token == END:
            break
        elif token != NOP:
            raise InputError(f"corrupt device tree: token {token} at offset {pos - 4}")
    if root is None:
        raise InputError("device tree without a root node")
    return root


def _align(pos: int) -> int:
    return (pos + 3) & ~3
