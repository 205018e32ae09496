"""The BuildContext handed to every component call."""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from rvforge.errors import UnsafePathError, UsageError
from rvforge.leftovers import scratch_dir
from rvforge.numbers import parse_decimal
from rvforge.processes import Cancellation
from rvforge.progress import Progress

if TYPE_CHECKING:
    from rvforge.net.http import HttpClient
    from rvforge.prestart import Prestart
    from rvforge.registry import Registry
    from rvforge.spec import BuildSpec


PrestartT = TypeVar("PrestartT", bound="Prestart")


def default_cache_dir() -> Path:
    """``$RVFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/rvforge``, else ``~/.cache/rvforge``."""
    if explicit := os.environ.get("RVFORGE_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rvforge"


def source_date_epoch() -> int:
    """``$SOURCE_DATE_EPOCH`` if set, else 0: packers clamp mtimes to it. A malformed value
    is a :class:`UsageError` (the reproducible-builds spec says to fail, not guess)."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return parse_decimal(value, "$SOURCE_DATE_EPOCH", maximum=0xFFFFFFFF,
                         error=UsageError) if value else 0


def _default_logger() -> Any:
    from rvforge.log import get_logger

    return get_logger("rvforge")


def _http_client() -> HttpClient:
    from rvforge.net.http import HttpClient

    return HttpClient()


@dataclass
class BuildContext:
    """What every provider, overlay, auditor, packer and launcher call receives.

    :param registry: every registered component, to look others up by name (a provider
        asking for a launcher, a launcher for a kernel source).
    :param cache_dir: persistent downloads (``$XDG_CACHE_HOME/rvforge``); each plugin
        uses its own subdirectory (:meth:`cache`).
    :param scratch_dir: temporary space removed when the context closes.
    :param log: a structlog logger (:func:`rvforge.log.get_logger`: structlog is loaded
        when it first writes a line).
    :param progress: progress bars for long steps.
    :param offline: use only the cache; never touch the network.
    :param strict: turn warnings that may hide problems into errors.
    :param deep: auditors sweep instructions, not only attributes (a build's comes from
        :attr:`BuildSpec.deep <rvforge.spec.BuildSpec.deep>`).
    :param source_date_epoch: clamp for mtimes in packed artifacts.
    :param artifact_kind: what the build writes (``initramfs``, ``disk``, ``tar``), from
        the build's spec; ``None`` outside a build (a bare ``rvforge audit``).
    :param settings: free-form settings from the config for plugins (``[plugin.NAME]``).
    :param http: the HTTP client downloads use (one connection pool per build; contexts
        copied with :func:`dataclasses.replace` share it). Closed with the context.
    :param flag_prefix: how the front end that asks spells its options, for the fixes
        messages suggest (:meth:`flag`): ``--`` on the command line, ``--rvforge-`` in the
        pytest plugin.
    :param prestarted: what plugins started before the command line was parsed
        (:mod:`rvforge.prestart`); a component takes its own with :meth:`take_prestarted`,
        and the rest is closed with the context.
    :param cancellation: set when the work should stop (``rvforge run --machine A,B``
        interrupted): a launcher hands it every guest process it starts
        (:meth:`~rvforge.processes.Cancellation.adopt`), so a cancel from another thread
        kills it and the launcher's own waits end.
    """

    registry: Registry
    cache_dir: Path = field(default_factory=default_cache_dir)
    scratch_dir: Path | None = None
    log: Any = field(default_factory=_default_logger)
    progress: Progress = field(default_factory=Progress)
    offline: bool = False
    strict: bool = False
    deep: bool = False
    source_date_epoch: int = field(default_factory=source_date_epoch)
    settings: dict[str, Any] = field(default_factory=dict)
    artifact_kind: str | None = None
    http: HttpClient = field(default_factory=_http_client, repr=False)
    flag_prefix: str = "--"
    cancellation: Cancellation = field(default_factory=Cancellation, repr=False)
    prestarted: list[Prestart] = field(default_factory=list, repr=False)
    _own_scratch: bool = field(default=False, repr=False)

    def cache(self, *parts: str) -> Path:
        """A directory under the cache (created), e.g. ``ctx.cache("alpine")``; a part that
        is absolute or holds ``..`` is refused (:class:`~rvforge.errors.UnsafePathError`)."""
        if bad := [p for p in parts if p.startswith("/") or ".." in p.split("/") or not p]:
            raise UnsafePathError(f"{bad[0]!r}: not a directory name inside the cache "
                                  f"({self.cache_dir}); refusing it")
        path = self.cache_dir.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def flag(self, name: str) -> str:
        """Option ``name`` (``machine``) as the asking front end spells it in a hint:
        ``--machine``, or ``--rvforge-machine`` in the pytest plugin."""
        return self.flag_prefix + name

    def scratch(self, *parts: str) -> Path:
        """A directory under the scratch space (created); gone when the context closes."""
        if self.scratch_dir is None:
            self.scratch_dir = scratch_dir()
            self._own_scratch = True
        path = self.scratch_dir.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def for_build(self, spec: BuildSpec) -> BuildContext:
        """This context with the values ``spec`` fixes for the whole build (``deep``,
        ``artifact_kind``). It shares the cache, scratch space and HTTP client with this
        one, which keeps owning them (closing this one releases them)."""
        if self.scratch_dir is None:
            self.scratch()
        return dataclasses.replace(self, deep=spec.deep, artifact_kind=spec.artifact_kind,
                                   _own_scratch=False)

    def take_prestarted(self, kind: type[PrestartT]) -> PrestartT | None:
        """The first handle of type ``kind`` in :attr:`prestarted`, removed from it (the
        caller now owns it), or ``None``."""
        for handle in list(self.prestarted):
            if isinstance(handle, kind):
                self.prestarted.remove(handle)
                return handle
        return None

    def close(self) -> None:
        while self.prestarted:
            self.prestarted.pop().close()
        self.http.close()
        if self._own_scratch and self.scratch_dir is not None:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
            self.scratch_dir = None
            self._own_scratch = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
