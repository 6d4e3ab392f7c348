"""Rows of results, the printed table and ``results/latest.json``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One line of the table: our figure beside the figure it is compared with, from this run."""

    section: str
    metric: str
    ours: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    ratio_meaning: str = ""
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class SectionResult:
    """What one benchmark section measured: its rows and the details behind them."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def fmt(value: float | None, unit: str = "") -> str:
    """Three significant figures, with the unit."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    magnitude = abs(value)
    if magnitude >= 100 or (value == int(value) and magnitude >= 10):
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def render_table(sections: list[SectionResult]) -> str:
    """A plain-text table of every row, then any section that failed to run."""
    header = ("section", "metric", "ours", "compared with (same run)", "ratio", "goal", "met")
    lines: list[tuple[str, ...]] = []
    for section in sections:
        for row in section.rows:
            compared = (
                f"{row.baseline_name}: {fmt(row.baseline, row.unit)}" if row.baseline_name else ""
            )
            ratio = f"{row.ratio:.2f}x {row.ratio_meaning}".strip() if row.ratio is not None else ""
            met = {True: "yes", False: "NO", None: ""}[row.met]
            lines.append(
                (row.section, row.metric, fmt(row.ours, row.unit), compared, ratio, row.goal, met)
            )
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(header)]
    widths = [len(h) for h in header] if not lines else widths

    def join(cells: tuple[str, ...]) -> str:
        return " | ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    out = [join(header), "-+-".join("-" * width for width in widths)]
    previous = None
    for line in lines:
        out.append(join(line if line[0] != previous else ("", *line[1:])))
        previous = line[0]
    for section in sections:
        if section.error:
            out.append(f"!! {section.name} did not complete: {section.error}")
    notes = [(s.name, r.metric, r.note) for s in sections for r in s.rows if r.note]
    if notes:
        out.append("")
        out.extend(f"note [{name} / {metric}]: {note}" for name, metric, note in notes)
    return "\n".join(out)


def write_json(path: Path, meta: dict[str, Any], sections: list[SectionResult]) -> None:
    """Write every row and detail, so a later run can be compared by a script."""
    payload = {
        "meta": meta,
        "sections": {
            section.name: {
                "rows": [asdict(row) for row in section.rows],
                "details": section.details,
                "error": section.error,
                "seconds": round(section.seconds, 2),
            }
            for section in sections
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
