"""The deb822 control format (``Packages``, ``Release``, ``control``, ``status``, ``.sources``).

A file is paragraphs separated by blank lines; a paragraph is ``Field: value`` lines, a
line starting with a space or tab continuing the previous field. Field names are
case-insensitive; :class:`Paragraph` keeps the original spelling and order.
"""

from __future__ import annotations

from collections.abc import Iterator


class Paragraph(dict[str, str]):
    """One paragraph: field name (as written) → value (continuation lines kept, joined with
    ``\\n``). Look-ups with :meth:`field` ignore case."""

    def field(self, name: str, default: str = "") -> str:
        if name in self:
            return self[name]
        lower = name.lower()
        for key, value in self.items():
            if key.lower() == lower:
                return value
        return default

    def dump(self) -> str:
        """The paragraph as deb822 text (no trailing blank line)."""
        lines = []
        for key, value in self.items():
            first, *rest = value.split("\n")
            lines.append(f"{key}: {first}".rstrip() if first else f"{key}:")
            lines.extend(f" {line}" if line.strip() else " ." for line in rest)
        return "\n".join(lines) + "\n"


def parse(text: str) -> Iterator[Paragraph]:
    """Yield each paragraph of ``text`` (``#`` comment lines are skipped)."""
    para = Paragraph()
    key = None
    for line in text.splitlines():
        if not line.strip():
            if para:
                yield para
                para = Paragraph()
            key = None
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t":
            if key is None:
                raise ValueError(f"continuation line before any field: {line!r}")
            para[key] += "\n" + line[1:]
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"not a 'Field: value' line: {line!r}")
        key = name.strip()
        para[key] = value.strip()
    if para:
        yield para


def parse_one(text: str) -> Paragraph:
    """The first paragraph of ``text`` (an empty one if there is none)."""
    return next(parse(text), Paragraph())
