"""The doctor's findings: one :class:`Check` per line, a terminal table and a JSON report."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Result = Literal["ok", "warn", "fail"]

OK: Result = "ok"
WARN: Result = "warn"
FAIL: Result = "fail"


@dataclass(frozen=True)
class Check:
    """One finding.

    Attributes:
        name: what was checked, e.g. ``run statuses``.
        result: ``ok``; ``warn`` (works, but differs from what the provider expects, or could not
            be verified); ``fail`` (something the provider relies on would break).
        detail: what the doctor saw.
        advice: what to do about it (empty when nothing).
    """

    name: str
    result: Result
    detail: str
    advice: str = ""


@dataclass
class Report:
    """Every check of one run, and the connection extras that would make the provider fit."""

    target: str
    checks: list[Check] = field(default_factory=list)
    suggested_extras: dict[str, Any] = field(default_factory=dict)

    def add(self, check: Check) -> None:
        """Record one check."""
        self.checks.append(check)

    @property
    def failed(self) -> bool:
        """Whether something the provider relies on would break."""
        return any(check.result == FAIL for check in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when nothing fails, 1 otherwise."""
        return 1 if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        """The JSON report: ``target``, ``checks`` (each ``name``, ``result``, ``detail``,
        ``advice``) and ``suggested_extras``."""
        return {
            "target": self.target,
            "checks": [asdict(check) for check in self.checks],
            "suggested_extras": dict(self.suggested_extras),
        }

    def dumps(self) -> str:
        """The JSON report as text."""
        return json.dumps(self.to_json(), indent=2)


def _counts(checks: Sequence[Check]) -> str:
    return ", ".join(
        f"{sum(1 for c in checks if c.result == result)} {result}" for result in (OK, WARN, FAIL)
    )


def render_table(report: Report, width: int | None = None) -> str:
    """The terminal table: a line per check (name, result, what it saw), the advice below it,
    then the suggested extras and a summary."""
    width = width or max(80, min(shutil.get_terminal_size((120, 24)).columns, 160))
    name_width = max([len("CHECK")] + [len(c.name) for c in report.checks])
    indent = " " * (name_width + 10)
    lines = [f"immuta-doctor: {report.target}", "", f"{'CHECK':<{name_width}}  RESULT  SEEN / DO"]
    for check in report.checks:
        first = f"{check.name:<{name_width}}  {check.result.upper():<6}  "
        lines += textwrap.wrap(
            check.detail or "-",
            width,
            initial_indent=first,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )
        if check.advice:
            lines += textwrap.wrap(
                check.advice,
                width,
                initial_indent=indent + "-> ",
                subsequent_indent=indent + "   ",
                break_on_hyphens=False,
            )
    lines.append("")
    if report.suggested_extras:
        lines.append("Suggested connection extras (add them to the Airflow connection's Extra):")
        lines.append(json.dumps(report.suggested_extras, indent=2))
    else:
        lines.append("Suggested connection extras: none (the provider's settings fit)")
    verdict = (
        "something the provider relies on would break (exit 1)"
        if report.failed
        else "the provider fits this tenant (exit 0)"
    )
    lines.append(f"{_counts(report.checks)}: {verdict}")
    return "\n".join(lines)
