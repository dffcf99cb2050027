"""Which command lines adbd serves as a stream of their own rather than through the shell.

A few commands run until the host closes the stream (``screenrecord … -``, a following ``logcat``,
the scrcpy server started with ``app_process``);
adbd hands them to their streaming service only when the whole line is that one simple command, so
anything the shell must interpret (pipes, lists, redirections, substitutions) still goes to the shell.
"""

from __future__ import annotations

import shlex

__all__ = ["lone_command", "plain_argv"]

_SHELL_SPECIALS = set(";&|<>$`()\\\n")


def plain_argv(command: str) -> list[str] | None:
    """The words of ``command`` when it is one simple command the shell would not interpret (no
    pipes, lists, redirections, substitutions, and it parses), else None."""
    if _SHELL_SPECIALS & set(command):
        return None
    try:
        return shlex.split(command)
    except ValueError:
        return None


def lone_command(command: str, name: str) -> list[str] | None:
    """The arguments when ``command`` is exactly one simple ``name`` (or ``/system/bin/name``), else None."""
    argv = plain_argv(command)
    if not argv or argv[0] not in (name, f"/system/bin/{name}"):
        return None
    return argv[1:]
