"""``logcat`` in the ordinary shell: ``-c`` clears, everything else prints what the buffer holds and
ends (``-d``). A ``logcat`` that keeps reading is a streaming service of its own
(``device_pool/sim/logcat.py``), chosen when it is the whole command line."""

from __future__ import annotations

from device_pool.sim.logcat import LogcatUsage, parse
from device_pool.sim.shell.registry import CommandContext, command


@command("logcat")
def logcat(ctx: CommandContext) -> int:
    try:
        opts = parse(ctx.args)
    except LogcatUsage as exc:
        ctx.stderr.println(exc.message)
        return 1
    if opts.clear:
        ctx.phone.log.clear()
        return 0
    entries = list(opts.select(ctx.phone.log.since(0)))
    if opts.max_count is not None:
        entries = entries[: opts.max_count]
    for entry in entries:
        ctx.stdout.println(opts.format(entry))
    return 0
