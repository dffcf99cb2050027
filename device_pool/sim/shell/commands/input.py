"""`input`: tap, swipe, draganddrop, text, keyevent — with InputShellCommand's parsing and errors.

Android 13 runs `input` as a shell command of the input service: a missing or unparsable argument
throws, and the shell-command framework prints the exception and exits 255; an unknown sub-command
prints "Unknown command: X" and exits 0.
"""

from __future__ import annotations

import re

from device_pool.sim import keycodes
from device_pool.sim.shell.registry import CommandContext, command

_SOURCES = (
    "keyboard", "dpad", "gamepad", "touchscreen", "touchnavigation", "mouse", "stylus", "trackball",
    "touchpad", "joystick", "rotaryencoder",
)  # fmt: skip

_USAGE = """Usage: input [<source>] [-d DISPLAY_ID] <command> [<arg>...]

The sources are:{trailing}
{sources}

-d: specify the display ID.
      (Default: -1 for key event, 0 for motion event if not specified.)
The commands and default sources are:
      text <string> (Default: touchscreen)
      keyevent [--longpress|--doubletap] <key code number or name> ... (Default: keyboard)
      tap <x> <y> (Default: touchscreen)
      swipe <x1> <y1> <x2> <y2> [duration(ms)] (Default: touchscreen)
      draganddrop <x1> <y1> <x2> <y2> [duration(ms)] (Default: touchscreen)
      press (Default: trackball)
      roll <dx> <dy> (Default: trackball)
      motionevent <DOWN|UP|MOVE|CANCEL> <x> <y> (Default: touchscreen)
      keycombination [-t duration(ms)] <key code 1> <key code 2> ... (Default: keyboard, the key order is important here.)
"""

_FRAMES = {
    "text": ("sendText", 255, "runText", 231),
    "keyevent": ("sendKeyEvent", 325, "runKeyEvent", 291),
    "tap": ("sendTap", 338, "runTap", 333),
    "swipe": ("sendSwipe", 381, "runSwipe", 351),
    "draganddrop": ("sendSwipe", 381, "runDragAndDrop", 365),
}

# Characters the virtual keyboard's key map can type; `input text` fails on anything else.
_TYPABLE = re.compile(r"[\x20-\x7e\n\t]*")


class _ShellCommandError(Exception):
    """A Java exception thrown inside InputShellCommand (printed by the framework, exit 255)."""

    def __init__(self, java_class: str, message: str) -> None:
        super().__init__(message)
        self.java_class = java_class
        self.message = message


class _Args:
    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.index = 0
        self.previous = "input"

    def next(self) -> str | None:
        if self.index >= len(self.args):
            return None
        self.previous = self.args[self.index]
        self.index += 1
        return self.previous

    def required(self) -> str:
        prev = self.previous
        value = self.next()
        if value is None:
            raise _ShellCommandError(
                "java.lang.IllegalArgumentException", f'Argument expected after "{prev}"'
            )
        return value


class _NumberFormat(Exception):
    pass


def _java_float(text: str) -> float:
    # Float.parseFloat: trims, accepts exponents and a trailing f/d, rejects Python-only forms.
    body = text.strip()
    if not re.fullmatch(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?)", body):
        raise _NumberFormat(text)
    return float(body.rstrip("fFdD").replace("Infinity", "inf"))


def _java_int(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise _NumberFormat(text)
    return int(text)


@command("input")
def input_(ctx: CommandContext) -> int:
    args = _Args(ctx.args)
    first = ctx.args[0] if ctx.args else None
    try:
        arg = args.next()
        if arg in _SOURCES:
            arg = args.required()
        if arg == "-d":
            display = args.required()
            if display.upper() not in ("INVALID_DISPLAY", "DEFAULT_DISPLAY") and not re.fullmatch(
                r"-?\d+", display
            ):
                raise _ShellCommandError(
                    "java.lang.IllegalArgumentException", "Error: Invalid arguments for display ID."
                )
            arg = args.required()
        if arg is None or arg in ("help", "-h"):
            ctx.stdout.write(_USAGE.format(trailing=" ", sources="\n".join(f"      {s}" for s in _SOURCES)))
            return 0
        handler = _HANDLERS.get(arg)
        if handler is None:
            ctx.stdout.println(f"Unknown command: {arg}")
            return 0
        try:
            handler(ctx, args)
        except _NumberFormat as exc:
            raise _ShellCommandError(
                "java.lang.IllegalArgumentException", f"Error: Invalid arguments for command: {arg}"
            ) from exc
        return 0
    except _ShellCommandError as exc:
        sub = next((a for a in ctx.args if a in _FRAMES), "tap")
        ctx.stderr.println()
        ctx.stderr.println(f"Exception occurred while executing '{first}':")
        ctx.stderr.println(f"{exc.java_class}: {exc.message}")
        send, send_line, run, run_line = _FRAMES[sub]
        if exc.java_class.endswith("NullPointerException"):
            ctx.stderr.println(
                f"\tat com.android.server.input.InputShellCommand.{send}(InputShellCommand.java:{send_line})"
            )
        else:
            ctx.stderr.println(
                "\tat com.android.modules.utils.BasicShellCommandHandler.getNextArgRequired(BasicShellCommandHandler.java:295)"
            )
        ctx.stderr.println(
            f"\tat com.android.server.input.InputShellCommand.{run}(InputShellCommand.java:{run_line})"
        )
        ctx.stderr.println(
            "\tat com.android.server.input.InputShellCommand.onCommand(InputShellCommand.java:155)"
        )
        ctx.stderr.println(
            "\tat com.android.modules.utils.BasicShellCommandHandler.exec(BasicShellCommandHandler.java:97)"
        )
        ctx.stderr.println("\tat android.os.ShellCommand.exec(ShellCommand.java:38)")
        ctx.stderr.println(
            "\tat com.android.server.input.InputManagerService.onShellCommand(InputManagerService.java:3409)"
        )
        ctx.stderr.println("\tat android.os.Binder.shellCommand(Binder.java:1049)")
        ctx.stderr.println("\tat android.os.Binder.onTransact(Binder.java:877)")
        return 255


def _tap(ctx: CommandContext, args: _Args) -> None:
    x = _java_float(args.required())
    y = _java_float(args.required())
    ctx.phone.tap(x, y)


def _swipe_args(args: _Args) -> tuple[float, float, float, float, int]:
    x1, y1, x2, y2 = (_java_float(args.required()) for _ in range(4))
    duration_arg = args.next()
    duration = _java_int(duration_arg) if duration_arg is not None else -1
    return x1, y1, x2, y2, duration if duration >= 0 else 300


def _swipe(ctx: CommandContext, args: _Args) -> None:
    ctx.phone.swipe(*_swipe_args(args))


def _drag(ctx: CommandContext, args: _Args) -> None:
    # Android holds the pointer for a long-press timeout before moving; the virtual phone has no
    # drag-and-drop targets, so the move itself is the visible effect.
    ctx.phone.swipe(*_swipe_args(args))


def _text(ctx: CommandContext, args: _Args) -> None:
    raw = args.required()
    # InputShellCommand.sendText: "%s" is a space (shells make spaces awkward to pass).
    buff = list(raw)
    escape = False
    i = 0
    while i < len(buff):
        if escape:
            escape = False
            if buff[i] == "s":
                buff[i] = " "
                del buff[i - 1]
                i -= 1
        if buff[i] == "%":
            escape = True
        i += 1
    text = "".join(buff)
    if not _TYPABLE.fullmatch(text):
        # KeyCharacterMap.getEvents() returns null for characters it cannot type.
        raise _ShellCommandError("java.lang.NullPointerException", "Attempt to get length of null array")
    ctx.phone.type_text(text)


def _keyevent(ctx: CommandContext, args: _Args) -> None:
    arg = args.required()
    longpress = arg == "--longpress"
    doubletap = arg == "--doubletap"
    if longpress or doubletap:
        arg = args.required()
    value: str | None = arg
    while value is not None:
        code = keycodes.keycode_from_string(value) or 0
        if 0 < code <= keycodes.MAX_KEYCODE:  # KEYCODE_UNKNOWN is injected on Android and does nothing
            # The virtual phone has no key-repeat model: a long press is one press.
            ctx.phone.key(code)
            if doubletap:
                ctx.phone.key(code)
        value = args.next()


_HANDLERS = {"tap": _tap, "swipe": _swipe, "draganddrop": _drag, "text": _text, "keyevent": _keyevent}
