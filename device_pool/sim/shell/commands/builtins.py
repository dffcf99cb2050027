"""Shell builtins and tiny tools: echo, true, false, sleep, id, whoami, cd, pwd, exit, export, env, cmd."""

from __future__ import annotations

import dataclasses
import logging
import re
import time

from device_pool.sim.shell.registry import CommandContext, ShellExit, command, lookup

logger = logging.getLogger(__name__)

# `sleep` really waits (scripts rely on it), but never longer than this: a shell command must not
# pin an adb worker thread for minutes.
MAX_SLEEP_S = 5.0

_ID = (
    "uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),1011(adb),"
    "1015(sdcard_rw),1028(sdcard_r),1078(ext_data_rw),1079(ext_obb_rw),3001(net_bt_admin),"
    "3002(net_bt),3003(inet),3006(net_bw_stats),3009(readproc),3011(uhid),3012(readtracefs) "
    "context=u:r:shell:s0"
)

_ECHO_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}


def _echo_unescape(text: str) -> tuple[str, bool]:
    """mksh's echo escapes; returns (text, stop) where stop means `\\c` ended all output."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 >= len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "c":
            return "".join(out), True
        if nxt in _ECHO_ESCAPES:
            out.append(_ECHO_ESCAPES[nxt])
            i += 2
        elif nxt == "0":
            digits = re.match(r"[0-7]{0,3}", text[i + 2 :])
            octal = digits.group(0) if digits else ""
            out.append(chr(int(octal or "0", 8) & 0xFF))
            i += 2 + len(octal)
        else:
            out.append("\\")
            i += 1
    return "".join(out), False


@command("echo")
def echo(ctx: CommandContext) -> int:
    # mksh: escapes are on by default; -n, -e, -E count only as whole option words.
    args = list(ctx.args)
    newline, escapes = True, True
    while args and len(args[0]) > 1 and args[0][0] == "-" and set(args[0][1:]) <= set("neE"):
        for flag in args.pop(0)[1:]:
            if flag == "n":
                newline = False
            else:
                escapes = flag == "e"
    text = " ".join(args)
    if escapes:
        text, stop = _echo_unescape(text)
        if stop:
            ctx.stdout.write(text)
            return 0
    ctx.stdout.write(text + ("\n" if newline else ""))
    return 0


@command("true", ":")
def true(ctx: CommandContext) -> int:
    return 0


@command("false")
def false(ctx: CommandContext) -> int:
    return 1


_SLEEP_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@command("sleep")
def sleep(ctx: CommandContext) -> int:
    if not ctx.args:
        return ctx.fail("Needs 1 argument")
    total = 0.0
    for arg in ctx.args:
        m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", arg)
        if not m:
            return ctx.fail(f"Bad number '{arg}'")
        total += float(m.group(1)) * _SLEEP_UNITS[m.group(2)]
    if total > MAX_SLEEP_S:
        logger.debug("sleep capped", extra={"requested_s": total, "cap_s": MAX_SLEEP_S})
    time.sleep(min(total, MAX_SLEEP_S))
    return 0


@command("id")
def id_(ctx: CommandContext) -> int:
    flags = "".join(a.lstrip("-") for a in ctx.args if a.startswith("-"))
    if "u" in flags or "g" in flags:
        ctx.stdout.println("shell" if "n" in flags else "2000")
    else:
        ctx.stdout.println(_ID)
    return 0


@command("whoami")
def whoami(ctx: CommandContext) -> int:
    ctx.stdout.println("shell")
    return 0


@command("cd")
def cd(ctx: CommandContext) -> int:
    target = ctx.args[0] if ctx.args else ctx.env.get("HOME", "/")
    path = ctx.path(target)
    host = ctx.phone.host_path(path)
    if not host.exists():
        ctx.stderr.println(f"/system/bin/sh: cd: {target}: No such file or directory")
        return 2
    if not host.is_dir():
        ctx.stderr.println(f"/system/bin/sh: cd: {target}: Not a directory")
        return 2
    ctx.state.cwd = path
    ctx.state.env["PWD"] = path
    return 0


@command("pwd")
def pwd(ctx: CommandContext) -> int:
    ctx.stdout.println(ctx.state.cwd)
    return 0


@command("exit")
def exit_(ctx: CommandContext) -> int:
    code = ctx.state.status
    if ctx.args:
        if not re.fullmatch(r"-?\d+", ctx.args[0]):
            ctx.stderr.println(f"/system/bin/sh: exit: {ctx.args[0]}: bad number")
            code = 1
        else:
            code = int(ctx.args[0])
    raise ShellExit(code & 0xFF)


@command("export")
def export(ctx: CommandContext) -> int:
    for arg in ctx.args:
        name, sep, value = arg.partition("=")
        if sep:
            ctx.state.env[name] = value
    return 0


@command("unset")
def unset(ctx: CommandContext) -> int:
    for name in ctx.args:
        ctx.state.env.pop(name, None)
    return 0


@command("env", "printenv")
def env(ctx: CommandContext) -> int:
    if ctx.name == "printenv" and ctx.args:
        values = [ctx.env[name] for name in ctx.args if name in ctx.env]
        for value in values:
            ctx.stdout.println(value)
        return 0 if len(values) == len(ctx.args) else 1
    for name, value in ctx.env.items():
        if name != "IFS":
            ctx.stdout.println(f"{name}={value}")
    return 0


@command("which")
def which(ctx: CommandContext) -> int:
    status = 0
    for name in ctx.args:
        if lookup(name) is None or name in _SHELL_BUILTINS:
            status = 1
        else:
            ctx.stdout.println(f"/system/bin/{name}")
    return status


_SHELL_BUILTINS = frozenset({"cd", "pwd", "exit", "export", "unset", ":", "true", "false", "echo"})

# `cmd SERVICE ...` reaches the same service as its wrapper script (`pm` is `cmd package`).
_SERVICES = {
    "package": "pm",
    "activity": "am",
    "input": "input",
    "settings": "settings",
    "window": "wm",
    "input_method": "ime",
}
_OTHER_SERVICES = ("battery", "display", "power", "uimode", "wifi", "statusbar", "clipboard")


@command("cmd")
def cmd(ctx: CommandContext) -> int:
    if not ctx.args:
        ctx.stderr.println(
            "cmd: No service specified; use -l to list all running services. Use -w to start and wait for a service."
        )
        return 20
    if ctx.args[0] == "-l":
        ctx.stdout.println("Currently running services:")
        for name in sorted((*_SERVICES, *_OTHER_SERVICES)):
            ctx.stdout.println(f"  {name}")
        return 0
    service = ctx.args[0]
    tool = _SERVICES.get(service)
    handler = lookup(tool) if tool else None
    if handler is None:
        ctx.stderr.println(f"cmd: Can't find service: {service}")
        return 20
    return handler(dataclasses.replace(ctx, name=tool or service, args=ctx.args[1:]))
