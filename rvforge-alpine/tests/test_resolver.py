"""The apk-like resolver: provides, priorities, install_if, conflicts, installed packages."""

from __future__ import annotations

import pytest

from rvforge import Tree

from rvforge_alpine.apkindex import parse_index
from rvforge_alpine.installed_db import INSTALLED, InstalledDb
from rvforge_alpine.pkginfo import Dependency, PackageInfo
from rvforge_alpine.resolver import Resolver, UnresolvableError

INDEX = """\
P:curl
V:8.9.1-r0
A:riscv64
D:ca-certificates-bundle so:libc.musl-riscv64.so.1 so:libcurl.so.4
p:cmd:curl=8.9.1-r0

P:libcurl
V:8.9.1-r0
A:riscv64
D:so:libc.musl-riscv64.so.1 so:libz.so.1
p:so:libcurl.so.4=4.8.0

P:libcurl
V:8.5.0-r0
A:riscv64
p:so:libcurl.so.4=4.8.0

P:bash
V:5.2.26-r0
A:riscv64
D:/bin/sh so:libc.musl-riscv64.so.1
p:cmd:bash=5.2.26-r0

P:bash-doc
V:5.2.26-r0
A:noarch
i:docs bash=5.2.26-r0

P:docs
V:0.2-r6
A:noarch
D:doc-provider

P:man-pages
V:6.8-r0
A:noarch
p:doc-provider

P:mandoc-doc
V:1.14-r0
A:noarch
p:doc-provider
k:10

P:mandoc-doc-low
V:1.14-r0
A:noarch
p:doc-provider
k:5

P:dash-binsh
V:0.5.12-r3
A:riscv64
p:/bin/sh cmd:sh=0.5.12-r3
k:60

P:yash-binsh
V:2.56-r0
A:riscv64
p:/bin/sh
k:80

P:nginx
V:1.26.2-r0
A:riscv64
D:!apache2 so:libc.musl-riscv64.so.1

P:apache2
V:2.4.62-r0
A:riscv64

P:php-nginx
V:1.0-r0
A:noarch
D:nginx apache2

P:old-musl-user
V:1.0-r0
A:riscv64
D:musl<1.2

P:x86-only
V:1.0-r0
A:x86_64

P:future
V:1.0-r0
A:riscv64
X:something-new

P:pkgconf-user
V:1.0-r0
A:riscv64
D:pc:zlib>=1.2

P:zlib-dev
V:1.3.1-r1
A:riscv64
p:pc:zlib=1.3.1
"""


@pytest.fixture
def resolver(minirootfs: Tree) -> Resolver:
    available = parse_index(INDEX, label="test")
    installed = InstalledDb.parse(minirootfs.read_text(INSTALLED))
    return Resolver(available, [p.info for p in installed.packages])


def names(packages: list[PackageInfo]) -> list[str]:
    return [p.label for p in packages]


def resolve(resolver: Resolver, *atoms: str) -> list[str]:
    return names(resolver.resolve([Dependency.parse(a) for a in atoms]).install)


def test_so_provides_pick_the_newest_and_installed_packages_count(resolver: Resolver) -> None:
    # so:libc and so:libz, ca-certificates-bundle come from the installed minirootfs
    assert resolve(resolver, "curl") == ["libcurl-8.9.1-r0", "curl-8.9.1-r0"]


def test_cmd_provide(resolver: Resolver) -> None:
    assert resolve(resolver, "cmd:curl") == ["libcurl-8.9.1-r0", "curl-8.9.1-r0"]


def test_versioned_request_picks_an_older_version(resolver: Resolver) -> None:
    assert resolve(resolver, "libcurl<8.9") == ["libcurl-8.5.0-r0"]


def test_pc_provide_with_version(resolver: Resolver) -> None:
    assert resolve(resolver, "pkgconf-user") == ["zlib-dev-1.3.1-r1", "pkgconf-user-1.0-r0"]


def test_binsh_is_already_provided_by_busybox(resolver: Resolver) -> None:
    assert resolve(resolver, "bash") == ["bash-5.2.26-r0"]


def test_provider_priority_and_unversioned_provides(resolver: Resolver) -> None:
    # man-pages provides doc-provider without version or priority: never chosen implicitly
    assert resolve(resolver, "docs") == ["mandoc-doc-1.14-r0", "docs-0.2-r6"]
    assert "man-pages-6.8-r0" in resolve(resolver, "man-pages", "docs")


def test_install_if(resolver: Resolver) -> None:
    assert resolve(resolver, "bash", "docs") == [
        "bash-5.2.26-r0", "mandoc-doc-1.14-r0", "docs-0.2-r6", "bash-doc-5.2.26-r0"]
    assert "bash-doc-5.2.26-r0" not in resolve(resolver, "bash")


def test_conflict_names_the_chain(resolver: Resolver) -> None:
    with pytest.raises(UnresolvableError) as info:
        resolve(resolver, "php-nginx")
    message = str(info.value)
    assert "world → php-nginx-1.0-r0 → apache2" in message
    assert "conflicts with nginx-1.26.2-r0" in message


def test_explicit_conflict(resolver: Resolver) -> None:
    with pytest.raises(UnresolvableError, match="conflicts with busybox-1.36.1-r29"):
        resolve(resolver, "!busybox")
    with pytest.raises(UnresolvableError, match="apache2-2.4.62-r0 conflicts with world"):
        resolve(resolver, "!apache2", "apache2")


def test_installed_package_is_not_replaced(resolver: Resolver) -> None:
    with pytest.raises(UnresolvableError) as info:
        resolve(resolver, "old-musl-user")
    assert "world → old-musl-user-1.0-r0 → musl<1.2" in str(info.value)


@pytest.mark.parametrize("atom, reason", [
    ("nosuch", "no package provides it"),
    ("curl>9", r"no version matches \(have curl-8.9.1-r0\)"),
    ("x86-only", "no package provides it"),
    ("future", "uses index fields this apk format does not know"),
])
def test_unresolvable(resolver: Resolver, atom: str, reason: str) -> None:
    with pytest.raises(UnresolvableError, match=reason):
        resolve(resolver, atom)


def test_nothing_to_do(resolver: Resolver) -> None:
    assert resolve(resolver, "busybox", "so:libcrypto.so.3") == []


def test_a_dependency_chain_deeper_than_any_real_one_is_one_error_not_a_recursion_error(
        ) -> None:
    """p0 → p1 → ... → p999: once a RecursionError (a traceback) at ~500 packages."""
    text = "".join(f"P:p{i}\nV:1.0-r0\nA:riscv64\n" + (f"D:p{i + 1}\n" if i < 999 else "")
                   + "\n" for i in range(1000))
    resolver = Resolver(parse_index(text, label="chain"), [])
    with pytest.raises(UnresolvableError, match="a dependency chain longer than 200"):
        resolver.resolve([Dependency.parse("p0")])


@pytest.mark.timeout(120)
def test_a_long_install_if_chain_resolves_in_linear_work() -> None:
    """3,000 packages, each joining once the one before it is installed, named so that a
    pass over the index in name order adds one at a time: looking at every package again
    after each addition (and every selected package for each condition) took minutes
    (N³: 11 s at N=400); with the index it is a blink."""
    count = 3000

    def name(k: int) -> str:
        return f"chain-{count - k:05d}"

    text = "".join(f"P:{name(k)}\nV:1.0-r0\nA:riscv64\n"
                   + (f"i:{name(k - 1)}\n" if k else "") + "\n" for k in range(count))
    plan = Resolver(parse_index(text, label="chain"), []).resolve(
        [Dependency.parse(name(0))])
    assert [pkg.name for pkg in plan.install] == [name(k) for k in range(count)]
    assert plan.reasons[name(2)] == f"install_if ({name(1)}) → {name(2)}-1.0-r0"
