"""Text filters (toybox): grep, head, tail, wc — enough for `dumpsys window | grep mCurrentFocus`."""

from __future__ import annotations

import re

from device_pool.sim.shell import phonefs
from device_pool.sim.shell.registry import CommandContext, command


def _inputs(ctx: CommandContext, files: list[str]) -> list[tuple[str, bytes | None]]:
    """(name, data) per input; data None when it could not be read (the error is already printed)."""
    if not files:
        return [("(standard input)", ctx.stdin)]
    out: list[tuple[str, bytes | None]] = []
    for name in files:
        if name == "-":
            out.append(("(standard input)", ctx.stdin))
            continue
        try:
            out.append((name, phonefs.read_bytes(ctx.phone, ctx.path(name))))
        except OSError as exc:
            ctx.stderr.println(f"{ctx.name}: {name}: {phonefs.describe_error(exc)}")
            out.append((name, None))
    return out


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


# BRE -> Python: in a basic regex `\( \) \{ \} \| \+ \?` are the operators and the bare
# characters are literals; everything else reads the same.
def _bre_to_python(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(nxt if nxt in "(){}|+?" else "\\" + nxt)
            i += 2
            continue
        out.append("\\" + ch if ch in "(){}|+?" else ch)
        i += 1
    return "".join(out)


_GREP_FLAGS = set("EFGivcnoqlLhHswx")


@command("grep", "egrep", "fgrep")
def grep(ctx: CommandContext) -> int:
    flags: set[str] = {"E"} if ctx.name == "egrep" else {"F"} if ctx.name == "fgrep" else set()
    patterns: list[str] = []
    files: list[str] = []
    args = list(ctx.args)
    while args:
        arg = args.pop(0)
        if arg == "--":
            files.extend(args)
            break
        if arg.startswith("--"):
            continue  # --color=auto and friends change nothing without a terminal
        if arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            for index, letter in enumerate(letters):
                if letter == "e":
                    rest = letters[index + 1 :]
                    if not rest and not args:
                        return ctx.fail("option requires an argument -- e", 2)
                    patterns.append(rest or args.pop(0))
                    break
                if letter not in _GREP_FLAGS:
                    return ctx.fail(f"Unknown option '{letter}'", 2)
                flags.add(letter)
            continue
        files.append(arg)
    if not patterns:
        if not files:
            return ctx.fail("Needs 1 argument", 2)
        patterns.append(files.pop(0))
    try:
        regexes = [_compile(p, flags) for p in patterns]
    except re.error as exc:
        return ctx.fail(f"bad REGEX '{patterns[0]}': {exc}", 2)

    inputs = _inputs(ctx, files)
    show_name = ("H" in flags or len(inputs) > 1) and "h" not in flags
    matched_any, failed = False, False
    for name, data in inputs:
        if data is None:
            failed = True
            continue
        count = 0
        for number, raw in enumerate(_lines(data), start=1):
            line = raw.decode("utf-8", "surrogateescape")
            hits = [m for rx in regexes for m in _matches(rx, line, flags)]
            if bool(hits) == ("v" in flags):
                continue
            count += 1
            matched_any = True
            if flags & {"q", "l", "L", "c"}:
                continue
            prefix = (f"{name}:" if show_name else "") + (f"{number}:" if "n" in flags else "")
            if "o" in flags and "v" not in flags:
                for m in hits:
                    ctx.stdout.println(prefix + m.group(0))
            else:
                ctx.stdout.println(prefix + line)
        if "q" in flags and matched_any:
            return 0
        if "c" in flags:
            ctx.stdout.println((f"{name}:" if show_name else "") + str(count))
        elif ("l" in flags and count) or ("L" in flags and not count):
            ctx.stdout.println(name)
    if failed and "s" not in flags and not ("q" in flags and matched_any):
        return 2
    return 0 if matched_any else 1


def _compile(pattern: str, flags: set[str]) -> re.Pattern[str]:
    if "F" in flags:
        source = re.escape(pattern)
    elif "E" in flags:
        source = pattern
    else:
        source = _bre_to_python(pattern)
    if "w" in flags:
        source = rf"(?<!\w)(?:{source})(?!\w)"
    if "x" in flags:
        source = rf"^(?:{source})$"
    return re.compile(source, re.IGNORECASE if "i" in flags else 0)


def _matches(rx: re.Pattern[str], line: str, flags: set[str]) -> list[re.Match[str]]:
    if "o" in flags:
        return [m for m in rx.finditer(line) if m.group(0)]
    m = rx.search(line)
    return [m] if m else []


def _count_option(ctx: CommandContext, default: int) -> tuple[int | None, bool, bool, list[str]] | None:
    """Parse `-n N`, `-N`, `-c N`, `-n +N` for head/tail: (count, bytes_mode, from_start, files)."""
    count, by_bytes, from_start = default, False, False
    files: list[str] = []
    args = list(ctx.args)
    while args:
        arg = args.pop(0)
        if arg in ("-n", "-c") or (arg[:2] in ("-n", "-c") and len(arg) > 2):
            value = arg[2:] or (args.pop(0) if args else "")
            by_bytes = arg.startswith("-c")
            if value.startswith("+"):
                from_start, value = True, value[1:]
            if not value.lstrip("-").isdigit():
                ctx.fail(f"Bad -{arg[1]} '{value}'")
                return None
            count = abs(int(value))
        elif re.fullmatch(r"-\d+", arg):
            count = int(arg[1:])
        elif arg.startswith("-") and arg not in ("-", "-q", "-v"):
            ctx.fail(f"Unknown option '{arg[1:]}'")
            return None
        elif arg not in ("-q", "-v"):
            files.append(arg)
    return count, by_bytes, from_start, files


def _head_tail(ctx: CommandContext, tail: bool) -> int:
    parsed = _count_option(ctx, 10)
    if parsed is None:
        return 1
    count, by_bytes, from_start, files = parsed
    assert count is not None
    inputs = _inputs(ctx, files)
    status = 0
    for index, (name, data) in enumerate(inputs):
        if data is None:
            status = 1
            continue
        if len(inputs) > 1:
            ctx.stdout.println(("\n" if index else "") + f"==> {name} <==")
        if by_bytes:
            if not tail:
                chunk = data[:count]
            elif from_start:
                chunk = data[max(count - 1, 0) :]
            else:
                chunk = data[-count:] if count else b""
            ctx.stdout.write(chunk)
            continue
        lines = data.split(b"\n")
        ends_with_newline = data.endswith(b"\n")
        if ends_with_newline:
            lines.pop()
        if not tail:
            picked = lines[:count]
        elif from_start:
            picked = lines[max(count - 1, 0) :]
        else:
            picked = lines[-count:] if count else []
        if picked:
            last_is_final = (not tail and count >= len(lines)) or tail
            text = b"\n".join(picked)
            ctx.stdout.write(text + (b"\n" if ends_with_newline or not last_is_final else b""))
    return status


@command("head")
def head(ctx: CommandContext) -> int:
    return _head_tail(ctx, tail=False)


@command("tail")
def tail(ctx: CommandContext) -> int:
    return _head_tail(ctx, tail=True)


@command("wc")
def wc(ctx: CommandContext) -> int:
    flags: set[str] = set()
    files: list[str] = []
    for arg in ctx.args:
        if arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                if letter not in "lwcm":
                    return ctx.fail(f"Unknown option '{letter}'")
                flags.add(letter)
        else:
            files.append(arg)
    shown = [f for f in "lwcm" if f in flags] or ["l", "w", "c"]
    inputs = _inputs(ctx, files)
    totals = dict.fromkeys(shown, 0)
    status = 0
    rows: list[tuple[list[int], str | None]] = []
    for name, data in inputs:
        if data is None:
            status = 1
            continue
        counts = {
            "l": data.count(b"\n"),
            "w": len(data.split()),
            "c": len(data),
            "m": len(data.decode("utf-8", "replace")),
        }
        rows.append(([counts[f] for f in shown], name if files else None))
        for f in shown:
            totals[f] += counts[f]
    if len(rows) > 1:
        rows.append(([totals[f] for f in shown], "total"))
    for values, name in rows:
        # toybox: a lone count from stdin is bare; otherwise columns are right-aligned.
        single = len(values) == 1 and name is None
        line = str(values[0]) if single else " ".join(f"{v:7d}" for v in values)
        ctx.stdout.println(line if name is None else f"{line} {name}")
    return status
