"""getprop: the phone's system properties."""

from __future__ import annotations

from device_pool.sim.shell.registry import CommandContext, command


@command("getprop")
def getprop(ctx: CommandContext) -> int:
    props: dict[str, str] = ctx.phone.props
    args = [a for a in ctx.args if not a.startswith("-")]
    if "-T" in ctx.args or "-Z" in ctx.args:
        # Property types / SELinux contexts: the sim has neither; answer like an unlabelled build.
        for key in sorted(props):
            ctx.stdout.println(
                f"[{key}]: [string]" if "-T" in ctx.args else f"[{key}]: [u:object_r:default_prop:s0]"
            )
        return 0
    if not args:
        for key in sorted(props):
            ctx.stdout.println(f"[{key}]: [{props[key]}]")
        return 0
    value = props.get(args[0])
    if value is None or value == "":
        value = args[1] if len(args) > 1 else ""
    ctx.stdout.println(value)
    return 0
