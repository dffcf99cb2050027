"""``screenrecord`` in the ordinary shell: help and argument errors as Android prints them.

A recording itself is a streaming service (``device_pool/sim/screenrecord.py``): it runs when the
whole command line is one ``screenrecord … -``. Here, inside pipes, lists or with a file name, the
virtual phone says what it supports instead of pretending to record.
"""

from __future__ import annotations

from device_pool.sim.screenrecord import UsageError, parse_args
from device_pool.sim.shell.registry import CommandContext, command


@command("screenrecord")
def screenrecord(ctx: CommandContext) -> int:
    try:
        parse_args(ctx.args)
    except UsageError as exc:
        (ctx.stdout if exc.code == 0 else ctx.stderr).write(exc.message)
        return exc.code
    return ctx.fail(
        "the virtual phone records only to stdout, as a command of its own: "
        "screenrecord --output-format=h264 [--size WxH] [--bit-rate N] [--time-limit S] -"
    )
