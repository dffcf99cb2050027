"""am (start, force-stop, kill, broadcast) and monkey, as ActivityManagerShellCommand answers them.

Broadcasts reach one receiver worth modelling: ADB Keyboard's, which types what an agent sends
(``ADB_INPUT_TEXT``/``ADB_INPUT_B64``/...) but only while it is the selected input method — its
receiver lives in the IME service, exactly as on a real phone.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field

from device_pool.sim import keycodes
from device_pool.sim.shell.commands.android_ids import short_component, split_component
from device_pool.sim.shell.registry import CommandContext, command

ADB_IME = "com.android.adbkeyboard/.AdbIME"
FLAG_ACTIVITY_NEW_TASK = 0x10000000
FLAG_INCLUDE_STOPPED = 0x400000  # what `am broadcast` adds, hence "flg=0x400000" in its echo

# Options that take one value and only steer `am` itself.
_AM_VALUE_OPTIONS = {"--user", "--display", "--windowingMode", "--activityType", "--task", "-P", "--start-profiler",
                     "--sampling", "-R", "--receiver-permission", "--attach-agent", "--attach-agent-bind"}  # fmt: skip
_AM_FLAG_OPTIONS = {"-D", "-N", "-W", "-S", "--streaming", "--track-allocation", "--task-overlay", "--lock-task",
                    "--allow-background-activity-starts", "--async", "--dismiss-keyguard", "--splashscreen-icon"}  # fmt: skip


class _UsageError(Exception):
    """IllegalArgumentException from Intent.parseCommandArgs (the framework prints it, exit 255)."""


@dataclass
class _Intent:
    action: str | None = None
    data: str | None = None
    mime: str | None = None
    categories: list[str] = field(default_factory=list)
    component: str | None = None
    package: str | None = None
    flags: int = 0
    extras: dict[str, object] = field(default_factory=dict)

    def describe(self) -> str:
        # Intent.toShortString: act, cat, dat, typ, flg, pkg, cmp, then "(has extras)".
        bits: list[str] = []
        if self.action:
            bits.append(f"act={self.action}")
        if self.categories:
            bits.append(f"cat=[{','.join(self.categories)}]")
        if self.data:
            bits.append(f"dat={_safe_uri(self.data)}")
        if self.mime:
            bits.append(f"typ={self.mime}")
        if self.flags:
            bits.append(f"flg=0x{self.flags:x}")
        if self.package:
            bits.append(f"pkg={self.package}")
        if self.component:
            bits.append(f"cmp={short_component(*split_component(self.component))}")
        if self.extras:
            bits.append("(has extras)")
        return "Intent { " + " ".join(bits) + " }"


def _safe_uri(uri: str) -> str:
    """Uri.toSafeString: web URLs lose their path, phone numbers and mail addresses are masked."""
    scheme, sep, rest = uri.partition(":")
    if not sep:
        return uri
    low = scheme.lower()
    if low in ("tel", "sip", "sms", "smsto", "mailto", "nfc"):
        return f"{scheme}:" + "".join("x" if ch.isalnum() else ch for ch in rest)
    if low in ("http", "https", "ftp", "rtsp") and rest.startswith("//"):
        host = rest[2:].split("/", 1)[0].split("?", 1)[0]
        return f"{scheme}://{host}/..."
    return uri


def _parse_bool(value: str) -> bool:
    low = value.lower()
    if low in ("true", "t", "1", "yes", "y", "on"):
        return True
    if low in ("false", "f", "0", "no", "n", "off"):
        return False
    raise _UsageError(f"Invalid boolean value: {value}")


def _parse_int(value: str) -> int:
    try:
        return int(value, 0) if value.lower().startswith(("0x", "-0x")) else int(value)
    except ValueError as exc:
        raise _UsageError(f'For input string: "{value}"') from exc


def _parse_intent(args: list[str], am_flags: set[str]) -> _Intent:
    intent = _Intent()
    i = 0

    def value() -> str:
        nonlocal i
        if i >= len(args):
            raise _UsageError(f'Argument expected after "{args[i - 1]}"')
        i += 1
        return args[i - 1]

    while i < len(args):
        opt = args[i]
        i += 1
        if opt == "-a":
            intent.action = value()
        elif opt == "-d":
            intent.data = value()
        elif opt == "-t":
            intent.mime = value()
        elif opt == "-c":
            intent.categories.append(value())
        elif opt == "-n":
            intent.component = value()
        elif opt == "-p":
            intent.package = value()
        elif opt == "-f":
            intent.flags |= _parse_int(value())
        elif opt in ("--es", "--ecn", "--eu"):
            key = value()
            intent.extras[key] = value()
        elif opt == "--esn":
            intent.extras[value()] = None
        elif opt == "--ez":
            key = value()
            intent.extras[key] = _parse_bool(value())
        elif opt in ("--ei", "--el"):
            key = value()
            intent.extras[key] = _parse_int(value())
        elif opt in ("--ef", "--ed"):
            key = value()
            try:
                intent.extras[key] = float(value())
            except ValueError as exc:
                raise _UsageError(f'For input string: "{args[i - 1]}"') from exc
        elif opt in ("--eia", "--eial", "--ela", "--elal"):
            key = value()
            intent.extras[key] = [_parse_int(v) for v in value().split(",") if v]
        elif opt in ("--esa", "--esal", "--efa", "--efal"):
            key = value()
            intent.extras[key] = value().split(",")
        elif opt in _AM_VALUE_OPTIONS:
            value()
        elif opt in _AM_FLAG_OPTIONS or opt.startswith(("--activity-", "--receiver-", "--grant-")) or opt in (
            "--exclude-stopped-packages", "--include-stopped-packages", "--debug-log-resolution",
        ):  # fmt: skip
            am_flags.add(opt)
        elif opt.startswith("-"):
            raise _UsageError(f"Unknown option: {opt}")
        elif "/" in opt and ":" not in opt:
            intent.component = opt
        elif ":" in opt:
            intent.data = opt
        else:
            intent.package = opt
    return intent


def _framework_error(ctx: CommandContext, sub: str, message: str) -> int:
    ctx.stderr.println()
    ctx.stderr.println(f"Exception occurred while executing '{sub}':")
    ctx.stderr.println(f"java.lang.IllegalArgumentException: {message}")
    ctx.stderr.println("\tat android.content.Intent.parseCommandArgs(Intent.java:11702)")
    ctx.stderr.println(
        "\tat com.android.server.am.ActivityManagerShellCommand.makeIntent(ActivityManagerShellCommand.java:538)"
    )
    ctx.stderr.println(
        "\tat com.android.modules.utils.BasicShellCommandHandler.exec(BasicShellCommandHandler.java:97)"
    )
    return 255


@command("am")
def am(ctx: CommandContext) -> int:
    if not ctx.args or ctx.args[0] in ("help", "-h"):
        ctx.stdout.println("Activity manager (activity) commands:")
        ctx.stdout.println("  start [-D] [-N] [-W] [-P <FILE>] [-S] [--user <USER_ID>] <INTENT>")
        ctx.stdout.println("  force-stop [--user <USER_ID> | all | current] <PACKAGE>")
        ctx.stdout.println("  kill [--user <USER_ID> | all | current] <PACKAGE>")
        ctx.stdout.println(
            "  broadcast [--user <USER_ID> | all | current] [--receiver-permission <PERMISSION>] <INTENT>"
        )
        return 0
    sub, rest = ctx.args[0], ctx.args[1:]
    if sub in ("force-stop", "kill", "stop-app"):
        packages = [
            a for a in rest if not a.startswith("-") and a not in ("all", "current") and not a.isdigit()
        ]
        if not packages:
            return _framework_error(ctx, sub, f'Argument expected after "{sub}"')
        if sub != "kill":  # `am kill` only kills background processes, which change nothing visible
            ctx.phone.force_stop(packages[-1])
        return 0
    am_flags: set[str] = set()
    try:
        intent = _parse_intent(rest, am_flags)
    except _UsageError as exc:
        return _framework_error(ctx, sub, str(exc))
    if sub in ("start", "start-activity"):
        return _start(ctx, intent, am_flags)
    if sub in ("broadcast", "send-broadcast"):
        return _broadcast(ctx, intent)
    ctx.stdout.println(f"Unknown command: {sub}")
    return 255


def _start(ctx: CommandContext, intent: _Intent, am_flags: set[str]) -> int:
    wait = "-W" in am_flags
    ctx.stdout.println(f"Starting: {intent.describe()}")
    intent.flags |= FLAG_ACTIVITY_NEW_TASK  # added after the echo, as am does
    out = ctx.stdout if wait else ctx.stderr
    target_pkg = split_component(intent.component)[0] if intent.component else intent.package
    if "-S" in am_flags and target_pkg:
        ctx.phone.force_stop(target_pkg)
    before = ctx.phone.foreground()
    started_at = time.monotonic()
    if intent.component and split_component(intent.component) == before and intent.data is None:
        out.println(
            "Warning: Activity not started, intent has been delivered to currently running top-most instance."
        )
        started = intent.component
        state = "HOT"
    else:
        try:
            started = ctx.phone.start_activity(
                intent.component,
                package=intent.package,
                action=intent.action,
                data=intent.data,
                categories=tuple(intent.categories),
            )
        except LookupError:
            if intent.component:
                pkg, cls = split_component(intent.component)
                out.println("Error type 3")
                out.println(f"Error: Activity class {{{pkg}/{cls}}} does not exist.")
            else:
                out.println(f"Error: Activity not started, unable to resolve {intent.describe()}")
            return 0
        state = "WARM" if before[0] == split_component(started)[0] else "COLD"
    if wait:
        # -W waits for the first frame: the starting window shows for launch_delay_ms.
        delay = ctx.phone.config.launch_delay_ms / 1000 if state == "COLD" else 0.0
        time.sleep(min(delay, 2.0))
        elapsed = round((time.monotonic() - started_at) * 1000)
        ctx.stdout.println("Status: ok")
        ctx.stdout.println(f"LaunchState: {state}")
        ctx.stdout.println(f"Activity: {short_component(*split_component(started))}")
        ctx.stdout.println(f"TotalTime: {elapsed}")
        ctx.stdout.println(f"WaitTime: {elapsed + 3}")
        ctx.stdout.println("Complete")
    return 0


def _broadcast(ctx: CommandContext, intent: _Intent) -> int:
    intent.flags |= FLAG_INCLUDE_STOPPED
    ctx.stdout.println(f"Broadcasting: {intent.describe()}")
    if ctx.phone.ime_current() == ADB_IME:
        _adb_keyboard(ctx, intent)
    ctx.stdout.println("Broadcast completed: result=0")
    return 0


def _adb_keyboard(ctx: CommandContext, intent: _Intent) -> None:
    """ADB Keyboard's receiver (github.com/senzhk/ADBKeyBoard behaviour, reimplemented)."""
    action, extras = intent.action, intent.extras
    if action == "ADB_INPUT_TEXT":
        msg = extras.get("msg")
        if isinstance(msg, str):
            ctx.phone.type_text(msg)
    elif action == "ADB_INPUT_B64":
        msg = extras.get("msg")
        if isinstance(msg, str):
            try:
                text = base64.b64decode(msg, validate=False).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return  # the app logs and ignores bad input
            ctx.phone.type_text(text)
    elif action == "ADB_INPUT_CHARS":
        chars = extras.get("chars")
        if isinstance(chars, list):
            ctx.phone.type_text("".join(chr(c) for c in chars if isinstance(c, int) and 0 <= c < 0x110000))
    elif action == "ADB_INPUT_CODE":
        code = extras.get("code")
        if isinstance(code, int) and 0 < code <= keycodes.MAX_KEYCODE:
            ctx.phone.key(code)
    elif action == "ADB_EDITOR_CODE":
        # An editor action (IME_ACTION_GO/SEARCH/SEND/DONE...) submits the field like ENTER does.
        if isinstance(extras.get("code"), int):
            ctx.phone.key(keycodes.ENTER)
    elif action == "ADB_CLEAR_TEXT":
        ctx.phone.clear_text()


# -------------------------------------------------------------------------- monkey
@command("monkey")
def monkey(ctx: CommandContext) -> int:
    for arg in ctx.args:
        ctx.stdout.println(f"  bash arg: {arg}")
    if not ctx.args:
        ctx.stderr.println("usage: monkey [-p ALLOWED_PACKAGE [-p ALLOWED_PACKAGE] ...]")
        ctx.stderr.println("              [-c MAIN_CATEGORY [-c MAIN_CATEGORY] ...]")
        ctx.stderr.println("              [-s SEED] [-v [-v] ...] [--throttle MILLISEC] COUNT")
        return 0
    ctx.stderr.println(f"args: [{', '.join(ctx.args)}]")
    for arg in ctx.args:
        ctx.stderr.println(f' arg: "{arg}"')
    packages: list[str] = []
    categories: list[str] = []
    count: int | None = None
    args = iter(ctx.args)
    for arg in args:
        if arg in ("-p", "-c", "-s", "--throttle", "--seed") or arg.startswith("--pct-"):
            value = next(args, "")
            if arg == "-p":
                packages.append(value)
                ctx.stderr.println(f'data="{value}"')
            elif arg == "-c":
                categories.append(value)
                ctx.stderr.println(f'data="{value}"')
        elif arg.startswith("-"):
            continue  # -v, --ignore-crashes and friends
        elif arg.isdigit():
            count = int(arg)
    if count is None:
        ctx.stderr.println("** Error: Count not specified")
        return 255
    launchable = [p for p in packages if ctx.phone.launcher_activity(p)]
    if not launchable:
        ctx.stderr.println("** No activities found to run, monkey aborted.")
        return 252
    started = time.monotonic()
    if count > 0:
        ctx.phone.start_activity(package=launchable[0], action="android.intent.action.MAIN",
                                 categories=tuple(categories) or ("android.intent.category.LAUNCHER",))  # fmt: skip
    elapsed = round((time.monotonic() - started) * 1000)
    ctx.stdout.println(f"Events injected: {count}")
    ctx.stdout.println(
        f"## Network stats: elapsed time={elapsed}ms (0ms mobile, 0ms wifi, {elapsed}ms not connected)"
    )
    return 0
