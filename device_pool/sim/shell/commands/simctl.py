"""phonefleet-sim: the virtual phone's own control command (no Android phone has it).

The pool resets phones between users over the same adb connection it drives them with; on redroid
that is a fresh data volume, on the virtual phone it is this command:

    adb shell phonefleet-sim factory-reset     # state rebuilt from the phone's seed, launcher in front
    adb shell phonefleet-sim info              # seed, size, data directory
    adb shell phonefleet-sim frame-counter on [--tick HZ] | off
                                               # stamp frames for latency benchmarks (counter.py);
                                               # --tick redraws it HZ times a second, like a spinner
    adb shell phonefleet-sim recordings        # streaming screenrecords: running=N started=N peak=N
"""

from __future__ import annotations

from device_pool.sim.shell.registry import CommandContext, command

_USAGE = "usage: phonefleet-sim factory-reset | info | recordings | frame-counter on [--tick HZ] | frame-counter off"


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
    if ctx.args == ["recordings"]:
        counts = ctx.phone.recordings
        ctx.stdout.println(" ".join(f"{k}={v}" for k, v in counts.items()))
        return 0
    if ctx.args[:1] == ["frame-counter"]:
        return _frame_counter(ctx, ctx.args[1:])
    ctx.stderr.println(_USAGE)
    return 2


def _frame_counter(ctx: CommandContext, args: list[str]) -> int:
    if args == ["off"]:
        ctx.phone.set_frame_counter(False)
        return 0
    if args == ["on"] or (len(args) == 3 and args[0] == "on" and args[1] == "--tick"):
        try:
            hz = float(args[2]) if len(args) == 3 else 0.0
        except ValueError:
            hz = -1.0
        if not 0 <= hz <= 240:
            ctx.stderr.println("phonefleet-sim: --tick takes a rate in Hz from 0 to 240")
            return 2
        ctx.phone.set_frame_counter(True, hz)
        return 0
    ctx.stderr.println(_USAGE)
    return 2
