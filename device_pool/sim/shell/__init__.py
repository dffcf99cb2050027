"""The virtual phone's shell: `/system/bin/sh -c` with Android's tools, answering as Android 13 does.

``run_shell(phone, command_line, stdin=b"") -> ShellResult`` parses the line (syntax.py), runs it
(interpreter.py) with commands from the registry (registry.py, commands/). Output is kept as the
ordered list of (stream, bytes) chunks the commands wrote, so binary output passes unchanged and
stderr never overtakes stdout.
"""

from device_pool.sim.shell.interpreter import SHELL_NAME, ShellResult, run_shell
from device_pool.sim.shell.syntax import ShellSyntaxError, parse

__all__ = ["SHELL_NAME", "ShellResult", "ShellSyntaxError", "parse", "run_shell"]
