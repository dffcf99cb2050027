"""What a caller may ask of a phone's log (``GET /api/v1/sessions/{id}/logcat``), turned into
``logcat``'s arguments, and its lines turned into fields.

Filters are logcat's own specs (``TAG:P``, ``*:P``; P one of V D I W E F S) checked here, so a
bad one answers 422 before the phone is asked; ``grep`` is a regular expression on the message
(logcat's ``-e``). Lines come in logcat's ``threadtime`` format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import InvalidRequest

__all__ = ["LogcatQuery", "parse_line"]

_SPEC = re.compile(r"(?:\*|[A-Za-z0-9_.\-$/ ]{1,64}):[VDIWEFS]")
_THREADTIME = re.compile(
    r"(?P<time>\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\s+(?P<pid>\d+)\s+(?P<tid>\d+)\s+"
    r"(?P<priority>[VDIWEFS])\s+(?P<tag>.*?)\s*: (?P<message>.*)"
)
MAX_TAIL = 10_000


@dataclass(frozen=True)
class LogcatQuery:
    filters: tuple[str, ...] = ()  # logcat filter specs; none: everything
    grep: str | None = None
    dump: bool = False  # what the phone holds now, then the end; else it keeps following
    tail: int | None = None  # only the last N lines already logged (0: only new ones)

    def __post_init__(self) -> None:
        for spec in self.filters:
            if not _SPEC.fullmatch(spec):
                raise InvalidRequest(
                    f"filter {spec!r} is not a logcat filter spec: TAG:P or *:P, with P one of V D I W E F S"
                )
        if self.grep is not None:
            try:
                re.compile(self.grep)
            except re.error as exc:
                raise InvalidRequest(f"grep {self.grep!r} is not a regular expression: {exc}") from exc
        if self.tail is not None and not 0 <= self.tail <= MAX_TAIL:
            raise InvalidRequest(f"tail must be between 0 and {MAX_TAIL}")

    def args(self) -> list[str]:
        args = ["-v", "threadtime"]
        if self.tail is not None:
            args += ["-t" if self.dump else "-T", str(self.tail)]
        elif self.dump:
            args.append("-d")
        if self.grep is not None:
            args += ["-e", self.grep]
        if self.filters:
            # Named tags only: everything else is silenced unless a *:P spec says otherwise.
            args += ["*:S", *self.filters] if not any(s.startswith("*:") for s in self.filters) else list(self.filters)
        return args

    def describe(self) -> dict[str, Any]:
        return {"filters": list(self.filters), "grep": self.grep, "dump": self.dump, "tail": self.tail}


def parse_line(line: str) -> dict[str, Any]:
    """A ``threadtime`` line's fields (``time``, ``pid``, ``tid``, ``priority``, ``tag``,
    ``message``) with the line itself; a line of another shape (a phone's banner) has ``line`` only."""
    match = _THREADTIME.fullmatch(line)
    if match is None:
        return {"line": line}
    fields: dict[str, Any] = match.groupdict()
    fields["pid"], fields["tid"] = int(fields["pid"]), int(fields["tid"])
    fields["line"] = line
    return fields
