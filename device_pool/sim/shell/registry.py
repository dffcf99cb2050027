"""The command table and what a command handler receives.

A handler is ``def handler(ctx: CommandContext) -> int`` registered with ``@command("name")``; it
reads ``ctx.args`` and ``ctx.stdin``, writes to ``ctx.stdout`` / ``ctx.stderr`` and returns the exit
status. The table is filled once at import time (``commands/__init__`` imports every module) and is
read-only afterwards, so concurrent shells share it safely.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from device_pool.sim.phone import VirtualPhone

__all__ = [
    "CommandContext",
    "Handler",
    "OutputStream",
    "ShellExit",
    "ShellState",
    "Sink",
    "command",
    "lookup",
]


class ShellExit(Exception):
    """Raised by the `exit` builtin; unwinds to the enclosing (sub)shell with ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class OutputStream:
    """A command's stdout or stderr: takes bytes or text (UTF-8)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def write(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if data:
            self.sink.write(data)

    def println(self, text: str = "") -> None:
        self.write(text + "\n")


@dataclass
class ShellState:
    """What one shell invocation remembers between commands (a subshell works on a copy)."""

    env: dict[str, str]
    cwd: str = "/"
    status: int = 0

    def copy(self) -> ShellState:
        return ShellState(dict(self.env), self.cwd, self.status)


@dataclass
class CommandContext:
    phone: VirtualPhone
    name: str  # argv[0] as the command was found (basename)
    args: list[str]  # argv[1:]
    stdin: bytes
    stdout: OutputStream
    stderr: OutputStream
    env: dict[str, str]
    state: ShellState = field(repr=False)

    def path(self, arg: str) -> str:
        """An argument as an absolute, normalised device path (relative to the shell's cwd)."""
        joined = posixpath.join(self.state.cwd, arg) if arg else self.state.cwd
        norm = posixpath.normpath(joined)
        # normpath keeps a leading "//"; the phone's namespace has one root.
        return "/" + norm.lstrip("/")

    def fail(self, message: str, code: int = 1) -> int:
        """Write ``name: message`` to stderr (toybox's error style) and return ``code``."""
        self.stderr.println(f"{self.name}: {message}")
        return code


Handler = Callable[[CommandContext], int]

_COMMANDS: dict[str, Handler] = {}


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler under one or more command names."""

    def register(handler: Handler) -> Handler:
        for name in names:
            if name in _COMMANDS:
                raise ValueError(f"shell command {name!r} registered twice")
            _COMMANDS[name] = handler
        return handler

    return register


# Directories on Android's PATH: `/system/bin/ls` runs the same tool as `ls`.
_BIN_DIRS = ("/system/bin", "/system/xbin", "/vendor/bin", "/product/bin", "/system_ext/bin", "/bin")


def lookup(name: str) -> Handler | None:
    if "/" in name:
        directory, base = posixpath.split(posixpath.normpath(name))
        if directory not in _BIN_DIRS:
            return None
        name = base
    return _COMMANDS.get(name)


def names() -> list[str]:
    return sorted(_COMMANDS)
