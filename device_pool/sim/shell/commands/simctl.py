"""phonefleet-sim: the virtual phone's own control command (no Android phone has it).

The pool resets phones between users over the same adb connection it drives them with; on redroid
that is a fresh data volume, on the virtual phone it is this command:

    adb shell phonefleet-sim factory-reset     # state rebuilt from the phone's seed, launcher in front
    adb shell phonefleet-sim info              # seed, size, data directory
"""

from __future__ import annotations

from device_pool.sim.shell.registry import CommandContext, command

_USAGE = "usage: phonefleet-sim factory-reset | info"


@command("phonefleet-sim")
def phonefleet_sim(ctx: CommandContext) -> int:
    if ctx.args == ["factory-reset"]:
        ctx.phone.factory_reset()
        ctx.stdout.println("Factory reset complete")
        return 0
    if ctx.args == ["info"]:
        c = ctx.phone.config
        ctx.stdout.println(f"seed={c.seed} size={c.width}x{c.height} density={c.density} serial={c.serial}")
        return 0
    ctx.stderr.println(_USAGE)
    return 2
