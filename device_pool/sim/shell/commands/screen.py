"""screencap (raw or PNG, to stdout or a file) and `uiautomator dump`."""

from __future__ import annotations

from device_pool.sim.shell import phonefs
from device_pool.sim.shell.registry import CommandContext, command

_SCREENCAP_USAGE = """usage: screencap [-hp] [-d display-id] [FILENAME]
   -h: this message
   -p: save the file as a png.
   -d: specify the physical display ID to capture (default: 0)
If FILENAME ends with .png it will be saved as a png.
If FILENAME is not given, the results will be printed to stdout."""


@command("screencap")
def screencap(ctx: CommandContext) -> int:
    png = False
    files: list[str] = []
    args = iter(ctx.args)
    for arg in args:
        if arg == "-p":
            png = True
        elif arg == "-d":
            next(args, None)
        elif arg.startswith("-"):
            ctx.stderr.println(_SCREENCAP_USAGE)
            return 1 if arg != "-h" else 0
        else:
            files.append(arg)
    if not files:
        ctx.stdout.write(ctx.phone.screencap_png() if png else ctx.phone.screencap_raw())
        return 0
    target = files[0]
    png = png or target.endswith(".png")
    data = ctx.phone.screencap_png() if png else ctx.phone.screencap_raw()
    try:
        phonefs.write_bytes(ctx.phone, ctx.path(target), data)
    except OSError as exc:
        ctx.stderr.println(f"Error opening file: {target} ({phonefs.describe_error(exc)})")
        return 1
    return 0


_DEFAULT_DUMP = "/sdcard/window_dump.xml"


@command("uiautomator")
def uiautomator(ctx: CommandContext) -> int:
    if not ctx.args or ctx.args[0] != "dump":
        ctx.stdout.println("Usage: uiautomator <subcommand> [options]")
        ctx.stdout.println()
        ctx.stdout.println("Available subcommands:")
        ctx.stdout.println()
        ctx.stdout.println("help: displays help message")
        ctx.stdout.println()
        ctx.stdout.println("dump: creates an XML dump of current UI hierarchy")
        ctx.stdout.println("    dump [--verbose][--compressed][--windows][file]")
        ctx.stdout.println("    [--compressed]: dumps compressed layout information.")
        ctx.stdout.println("    [file]: the location where the dumped XML should be stored, default is")
        ctx.stdout.println(f"      {_DEFAULT_DUMP}")
        return 0
    files = [a for a in ctx.args[1:] if not a.startswith("--")]
    target = ctx.path(files[0]) if files else _DEFAULT_DUMP
    xml = ctx.phone.ui_xml()
    if target in ("/dev/tty", "/dev/stdout", "/proc/self/fd/1"):
        ctx.stdout.write(xml)
    else:
        try:
            phonefs.write_bytes(ctx.phone, target, xml.encode("utf-8"))
        except OSError as exc:
            ctx.stderr.println(f"ERROR: could not write {target}: {phonefs.describe_error(exc)}")
            return 1
    # "hierchary" is Android's own spelling; clients match on it.
    ctx.stdout.println(f"UI hierchary dumped to: {target}")
    return 0
