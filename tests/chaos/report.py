"""The chaos suite's report: one record per scenario (its fault, recovery times, outcome).

Each scenario's record is printed as one line when it is taken; at the end of the session all of
them are written as JSON to ``$PHONEFLEET_CHAOS_REPORT`` (else ``chaos-report.json`` in pytest's
base temporary directory) and shown as a table in the terminal summary. ``bench/bench_faults.py``
runs the suite and prints the table docs/faults.md quotes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPORT_ENV = "PHONEFLEET_CHAOS_REPORT"
COLUMNS = (
    "scenario",
    "outage_s",
    "moving_again_s",
    "first_success_s",
    "all_ended_s",
    "retried",
    "test_s",
    "passed",
)

RECORDS: list[dict[str, Any]] = []


def record(entry: dict[str, Any]) -> None:
    RECORDS.append(entry)
    print("\nchaos: " + " ".join(f"{key}={entry.get(key)}" for key in COLUMNS))


def path(default_dir: Path) -> Path:
    return Path(os.environ.get(REPORT_ENV) or default_dir / "chaos-report.json")


def write(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(RECORDS, indent=2, default=str) + "\n")


def table(records: list[dict[str, Any]]) -> list[str]:
    """The records as a Markdown table (times in seconds; '-' where there is none)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for entry in records:
        lines.append(
            "| " + " | ".join("-" if entry.get(k) is None else str(entry.get(k)) for k in COLUMNS) + " |"
        )
    return lines
