"""Running one shell command on an open device stream: shell protocol v2, or the legacy raw shell."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from device_pool.driver.errors import StreamClosed
from device_pool.driver.wire import SHELL_CLOSE_STDIN, AdbConnection


@dataclass(frozen=True)
class ShellOutput:
    """What a shell command printed and how it exited (stderr is empty on the legacy shell)."""

    stdout: str
    stderr: str
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def output(self) -> str:
        """stdout then stderr, for error messages."""
        if self.stdout and self.stderr:
            return f"{self.stdout.rstrip()}\n{self.stderr}"
        return self.stdout or self.stderr


def v2_service(command: str) -> str:
    """The service name for shell v2 without a pty (exit code, separate stderr, binary-clean)."""
    return f"shell,v2,raw:{command}"


async def run_v2(conn: AdbConnection) -> tuple[bytes, bytes, int]:
    """Close stdin at once (a command that reads it must not wait on us) and collect the result."""
    try:
        await conn.send_shell_packet(SHELL_CLOSE_STDIN)
    except ConnectionError:
        # A quick command may have ended and its stream closed before our EOF arrived; its
        # output is already buffered here, and a dead phone shows up as a missing exit packet.
        pass
    return await conn.read_shell_v2()


def legacy_command(command: str) -> tuple[str, str]:
    """Wrap a command so the legacy shell (no exit codes) prints one: returns (service, marker)."""
    marker = f"__pf_exit_{secrets.token_hex(6)}__"
    # A subshell, so that `exit N` inside the command still lets the marker print.
    return f"shell:({command}); echo {marker}$?", marker


async def run_legacy(conn: AdbConnection, marker: str) -> tuple[bytes, bytes, int]:
    """Read a legacy shell reply to its end and take the exit code from the trailing marker."""
    raw = await conn.read_to_end()
    # The marker may follow output that lacks a final newline, so it is matched at the very end.
    match = re.search(re.escape(marker.encode()) + rb"(\d+)\r?\n?\Z", raw)
    if match is None:
        raise StreamClosed("stream closed before the exit status", raw)
    return raw[: match.start()], b"", int(match.group(1))
