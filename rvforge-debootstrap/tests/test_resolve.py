"""Dependency resolution on small hand-written Packages files."""

from __future__ import annotations

import pytest

from rvforge_debootstrap.index import PackageIndex, parse_relations
from rvforge_debootstrap.resolve import UnknownPackageError, UnsatisfiableError, resolve


def index_of(text: str) -> PackageIndex:
    return PackageIndex.from_text(text, "riscv64")


def para(name: str, version: str = "1.0", arch: str = "riscv64", **fields: str) -> str:
    lines = [f"Package: {name}", f"Version: {version}", f"Architecture: {arch}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def packages(*paragraphs: str) -> str:
    return "\n".join(paragraphs)


def test_relations_parse_alternatives_versions_and_qualifiers() -> None:
    groups = parse_relations("libc6 (>= 2.34), python3:any | python3-minimal (<< 3.14~), "
                             "foo (> 1)")
    assert [[str(r) for r in g] for g in groups] == [
        ["libc6 (>= 2.34)"], ["python3:any", "python3-minimal (<< 3.14~)"], ["foo (>= 1)"]]


def test_depends_and_pre_depends_are_followed_dependencies_first() -> None:
    index = index_of(packages(
        para("app", Depends="libfoo (>= 2), tool", Pre_Depends="libc6"),
        para("libfoo", "2.1", Depends="libc6 (>= 2.30)"),
        para("tool", arch="all"),
        para("libc6", "2.41-1"),
        para("unrelated"),
        para("other-arch", arch="amd64"),
    ))
    result = resolve(index, ["app"])
    names = result.names()
    assert sorted(names) == ["app", "libc6", "libfoo", "tool"]
    assert names.index("libc6") < names.index("libfoo") < names.index("app")
    assert result.parents["libfoo"] == "app" and result.parents["app"] is None
    assert "other-arch" not in index


def version_of(index: PackageIndex, name: str) -> str:
    """The version ``index`` has of ``name`` (which it must have)."""
    package = index.get(name)
    assert package is not None, name
    return package.version


def test_highest_version_wins_and_versioned_dependency_is_checked() -> None:
    index = index_of(packages(para("lib", "1.0~rc1"), para("lib", "1.0"),
                              para("app", Depends="lib (>> 1.0~rc1)")))
    assert version_of(index, "lib") == "1.0"
    assert [p.version for p in resolve(index, ["app"]).packages if p.name == "lib"] == ["1.0"]


def test_first_satisfiable_alternative_is_taken() -> None:
    index = index_of(packages(
        para("app", Depends="missing | libold (>= 2) | libnew"),
        para("libold", "1.5"), para("libnew", "3"),
    ))
    assert sorted(resolve(index, ["app"]).names()) == ["app", "libnew"]


def test_alternative_already_selected_is_reused() -> None:
    index = index_of(packages(
        para("app", Depends="mawk | gawk"), para("mawk"), para("gawk"),
        para("base", Depends="gawk"),
    ))
    assert sorted(resolve(index, ["base", "app"]).names()) == ["app", "base", "gawk"]


def test_virtual_packages_and_versioned_provides() -> None:
    index = index_of(packages(
        para("app", Depends="awk, libapi (>= 2)"),
        para("zawk", Provides="awk", Priority="optional"),
        para("mawk", Provides="awk", Priority="required"),
        para("libimpl", Provides="libapi (= 2.5)"),
        para("libold", Provides="libapi"),  # unversioned Provides cannot satisfy (>= 2)
    ))
    assert sorted(resolve(index, ["app"]).names()) == ["app", "libimpl", "mawk"]


def test_multi_arch_any_needs_allowed() -> None:
    index = index_of(packages(
        para("app", Depends="python3:any"), para("python3", Multi_Arch="allowed"),
        para("tool", Depends="perl:any"), para("perl"),
    ))
    assert sorted(resolve(index, ["app"]).names()) == ["app", "python3"]
    with pytest.raises(UnsatisfiableError, match="perl is not available for any"):
        resolve(index, ["tool"])


def test_unsatisfiable_dependency_names_the_chain() -> None:
    index = index_of(packages(
        para("top", Depends="middle"), para("middle", Depends="libx (>= 3) | liby"),
        para("libx", "2.0"),
    ))
    with pytest.raises(UnsatisfiableError) as caught:
        resolve(index, ["top"], where="test main/riscv64")
    message = str(caught.value)
    assert "top → middle → depends on libx (>= 3) | liby" in message
    assert "libx is 2.0" in message and "liby is not available" in message
    assert caught.value.exit_code == 2


def test_unknown_root_names_it_with_a_suggestion() -> None:
    index = index_of(packages(para("busybox-static")))
    with pytest.raises(UnknownPackageError, match="'busybox-statc'.*busybox-static") as caught:
        resolve(index, ["busybox-statc"])
    assert caught.value.exit_code == 2


def test_dependency_cycles_terminate() -> None:
    index = index_of(packages(para("a", Depends="b"), para("b", Depends="a")))
    assert sorted(resolve(index, ["a"]).names()) == ["a", "b"]


def test_index_reads_paragraphs_whatever_their_field_order() -> None:
    text = ("Version: 2.0\nPackage: late-name\nArchitecture: riscv64\nPriority: required\n"
            "Provides: virt (= 2.0)\n\n" + para("plain", Essential="yes") + "\n"
            + para("late-name", "1.0") + "\n" + para("foreign", arch="amd64", Provides="virt"))
    index = index_of(text)
    assert version_of(index, "late-name") == "2.0"  # the highest version of the two
    assert [p.name for p in index.with_field("Priority", "required")] == ["late-name"]
    assert [p.name for p in index.with_field("Essential", "yes")] == ["plain"]
    assert [(p.name, str(r)) for p, r in index.providers("virt")] == [
        ("late-name", "virt (= 2.0)")]  # the amd64 provider is not for this architecture
    assert "foreign" not in index and "foreign" in index.names()
    assert index.get("missing") is None and index.providers("missing") == []


def test_index_takes_bytes_as_the_archive_gives_them() -> None:
    index = PackageIndex(packages(para("tzdata", Maintainer="Benjamin Drung <bdrung@x>",
                                       Description="fuseaux horaires, café"),
                                  para("b")).encode(), "riscv64")
    assert version_of(index, "tzdata") == "1.0" and index.names() == ["tzdata", "b"]
