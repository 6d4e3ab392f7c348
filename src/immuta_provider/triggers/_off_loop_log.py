"""Log lines of a trigger, written from a worker thread instead of the triggerer's event loop.

Airflow 3's trigger runner writes each log line to a socket that its supervisor drains between
database rounds. A line written from the event loop blocks the whole loop when that socket is
full, and if the supervisor is then itself blocked sending new triggers to the loop, neither side
moves again (measured with 10,000 waits in one triggerer: ``docs/scaling.md``). Written from a
thread, a full socket stalls only the trigger whose line it is.
"""

from __future__ import annotations

import asyncio
from typing import Any


class OffLoopLog:
    """A logger for :class:`~immuta_provider._task_runs.RunWatch` that keeps lines until flushed.

    ``asyncio.to_thread`` carries the context variables over, so the lines still reach the task's
    log (Airflow binds the trigger id to the context).
    """

    def __init__(self, log: Any) -> None:
        self._log = log
        self._lines: list[tuple[str, str, tuple[Any, ...]]] = []

    def info(self, message: str, *args: Any) -> None:
        self._lines.append(("info", message, args))

    def warning(self, message: str, *args: Any) -> None:
        self._lines.append(("warning", message, args))

    async def flush(self) -> None:
        """Write the kept lines, in order, from a worker thread."""
        if self._lines:
            lines, self._lines = self._lines, []
            await asyncio.to_thread(self._write, lines)

    def _write(self, lines: list[tuple[str, str, tuple[Any, ...]]]) -> None:
        for level, message, args in lines:
            getattr(self._log, level)(message, *args)
