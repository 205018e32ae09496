"""Progress reporting for long steps (downloads, packing, booting).

On a terminal, :class:`Progress` draws rich progress bars on stderr; elsewhere it logs one
line when a task starts and one when it ends, so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any


class Task:
    """Handle of one running task: call :meth:`advance` as work gets done."""

    def __init__(self, bar: Any = None, task_id: Any = None) -> None:
        self._bar = bar
        self._task_id = task_id
        self.done: float = 0

    def advance(self, amount: float = 1) -> None:
        self.done += amount
        if self._bar is not None:
            self._bar.update(self._task_id, advance=amount)

    def set_total(self, total: float | None) -> None:
        if self._bar is not None:
            self._bar.update(self._task_id, total=total)


class Progress:
    """Creates :class:`Task` handles; bars only when ``enabled`` (stderr is a terminal)."""

    def __init__(self, enabled: bool | None = None, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stderr
        self.enabled = self._stream.isatty() if enabled is None else enabled

    @contextmanager
    def task(self, description: str, total: float | None = None, *, bytes: bool = False
             ) -> Iterator[Task]:
        """Report progress of one step. ``bytes`` formats the counts as sizes."""
        start = time.monotonic()
        if not self.enabled:
            task = Task()
            yield task
            from rvforge.log import get_logger

            get_logger("rvforge.progress").debug(
                "done", step=description, seconds=round(time.monotonic() - start, 3))
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        columns: list[Any] = [TextColumn("{task.description}")]
        if total is None and not bytes:  # nothing to count: a spinner and the time
            columns.insert(0, SpinnerColumn())
        else:
            columns.append(BarColumn())
            columns += [DownloadColumn(), TransferSpeedColumn()] if bytes else \
                [MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        with RichProgress(*columns, console=Console(file=self._stream), transient=True) as bar:
            task = Task(bar, bar.add_task(description, total=total))
            yield task
