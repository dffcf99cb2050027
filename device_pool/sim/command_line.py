"""Which command lines adbd serves as a stream of their own rather than through the shell.

A few commands run until the host closes the stream (``screenrecord … -``, a following ``logcat``);
adbd hands them to their streaming service only when the whole line is that one simple command, so
anything the shell must interpret (pipes, lists, redirections, substitutions) still goes to the shell.
"""

from __future__ import annotations

import shlex

__all__ = ["lone_command"]

_SHELL_SPECIALS = set(";&|<>$`()\\\n")


def lone_command(command: str, name: str) -> list[str] | None:
    """The arguments when ``command`` is exactly one simple ``name`` (or ``/system/bin/name``), else None."""
    if _SHELL_SPECIALS & set(command):
        return None
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if not argv or argv[0] not in (name, f"/system/bin/{name}"):
        return None
    return argv[1:]
