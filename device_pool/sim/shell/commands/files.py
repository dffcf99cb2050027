"""File tools (toybox): ls, cat, rm, mkdir, touch. Paths are device paths; output is toybox's."""

from __future__ import annotations

import datetime as dt
import errno
import os
import posixpath
import shutil
import stat
import zoneinfo
from pathlib import Path

from device_pool.sim.shell import phonefs
from device_pool.sim.shell.registry import CommandContext, command


def _parse_flags(ctx: CommandContext, allowed: str) -> tuple[set[str], list[str]] | None:
    """Toybox-style short options (combinable, any position until `--`); None after an error."""
    flags: set[str] = set()
    operands: list[str] = []
    args = iter(ctx.args)
    for arg in args:
        if arg == "--":
            operands.extend(args)
            break
        if arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                if letter not in allowed:
                    ctx.fail(f"Unknown option '{letter}' (see \"{ctx.name} --help\")")
                    return None
                flags.add(letter)
        else:
            operands.append(arg)
    return flags, operands


def _error(ctx: CommandContext, name: str, exc: OSError, quote: bool = False) -> None:
    shown = f"'{name}'" if quote else name
    ctx.stderr.println(f"{ctx.name}: {shown}: {phonefs.describe_error(exc)}")


# ----------------------------------------------------------------------------- ls
def _owner(device_path: str) -> tuple[str, str]:
    # The sim keeps no ownership; answer with what Android shows for each area.
    if device_path.startswith("/storage/") or device_path.startswith("/sdcard"):
        return "u0_a0", "media_rw"
    if device_path.startswith("/data/local/tmp"):
        return "shell", "shell"
    return "root", "root"


def _zone(ctx: CommandContext) -> dt.tzinfo:
    name = ctx.phone.props.get("persist.sys.timezone", "") if hasattr(ctx.phone, "props") else ""
    try:
        return zoneinfo.ZoneInfo(name) if name else dt.UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _long_line(ctx: CommandContext, device_path: str, host: Path, shown: str, zone: dt.tzinfo) -> list[str]:
    st = host.lstat()
    user, group = _owner(device_path)
    when = dt.datetime.fromtimestamp(st.st_mtime, zone).strftime("%Y-%m-%d %H:%M")
    name = shown
    if stat.S_ISLNK(st.st_mode):
        name += f" -> {os.readlink(host)}"
    return [stat.filemode(st.st_mode), str(st.st_nlink), user, group, str(st.st_size), when, name]


def _print_entries(
    ctx: CommandContext, rows: list[tuple[str, Path, str]], long: bool, zone: dt.tzinfo
) -> None:
    if not long:
        for _dev, _host, shown in rows:
            ctx.stdout.println(shown)
        return
    table = [_long_line(ctx, dev, host, shown, zone) for dev, host, shown in rows]
    if not table:
        return
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for r in table:
        ctx.stdout.println(
            f"{r[0]} {r[1]:>{widths[1]}} {r[2]:<{widths[2]}} {r[3]:<{widths[3]}} {r[4]:>{widths[4]}} {r[5]} {r[6]}"
        )


@command("ls")
def ls(ctx: CommandContext) -> int:
    parsed = _parse_flags(ctx, "laA1dRhnstrSF")
    if parsed is None:
        return 1
    flags, operands = parsed
    long = bool(flags & {"l", "n"})
    zone = _zone(ctx)
    targets = operands or ["."]
    status = 0
    plain: list[tuple[str, Path, str]] = []
    directories: list[tuple[str, str, Path]] = []
    for arg in targets:
        device = ctx.path(arg)
        host = ctx.phone.host_path(device)
        if not host.exists() and not host.is_symlink():
            ctx.stderr.println(f"ls: {arg}: No such file or directory")
            status = 1
        elif host.is_dir() and "d" not in flags:
            directories.append((arg, device, host))
        else:
            plain.append((device, host, arg))
    _print_entries(ctx, sorted(plain, key=lambda r: r[2]), long, zone)
    headers = len(targets) > 1
    for index, (arg, device, host) in enumerate(sorted(directories)):
        if headers:
            ctx.stdout.println(("\n" if plain or index else "") + f"{arg}:")
        try:
            names = sorted(p.name for p in host.iterdir())
        except OSError as exc:
            _error(ctx, arg, exc)
            status = 1
            continue
        if "a" not in flags:
            names = [n for n in names if not n.startswith(".")]
        rows = [(posixpath.join(device, n), host / n, n) for n in names]
        if "a" in flags:
            parent = posixpath.dirname(device) or "/"
            rows = [(device, host, "."), (parent, ctx.phone.host_path(parent), ".."), *rows]
        if long:
            blocks = sum(getattr(h.lstat(), "st_blocks", 0) for _d, h, _s in rows) // 2
            ctx.stdout.println(f"total {blocks}")
        _print_entries(ctx, rows, long, zone)
    return status


# ---------------------------------------------------------------------------- cat
@command("cat")
def cat(ctx: CommandContext) -> int:
    parsed = _parse_flags(ctx, "uvte")
    if parsed is None:
        return 1
    _flags, operands = parsed
    if not operands:
        ctx.stdout.write(ctx.stdin)
        return 0
    status = 0
    for arg in operands:
        if arg == "-":
            ctx.stdout.write(ctx.stdin)
            continue
        try:
            ctx.stdout.write(phonefs.read_bytes(ctx.phone, ctx.path(arg)))
        except OSError as exc:
            _error(ctx, arg, exc)
            status = 1
    return status


# ----------------------------------------------------------------------------- rm
@command("rm")
def rm(ctx: CommandContext) -> int:
    parsed = _parse_flags(ctx, "fiRrvd")
    if parsed is None:
        return 1
    flags, operands = parsed
    force, recursive = "f" in flags, bool(flags & {"r", "R"})
    if not operands:
        if force:
            return 0
        return ctx.fail("Needs 1 argument")
    status = 0
    for arg in operands:
        device = ctx.path(arg)
        host = ctx.phone.host_path(device)
        if not host.exists() and not host.is_symlink():
            if not force:
                ctx.stderr.println(f"rm: {arg}: No such file or directory")
                status = 1
            continue
        if host.is_dir() and not host.is_symlink() and not recursive and "d" not in flags:
            ctx.stderr.println(f"rm: {arg}: Is a directory")
            status = 1
            continue
        if ctx.phone.is_read_only(device) or device == "/":
            ctx.stderr.println(f"rm: {arg}: Read-only file system")
            status = 1
            continue
        try:
            if host.is_dir() and not host.is_symlink():
                if recursive:
                    shutil.rmtree(host)
                else:
                    host.rmdir()
            else:
                host.unlink()
        except OSError as exc:
            _error(ctx, arg, exc)
            status = 1
    return status


# -------------------------------------------------------------------------- mkdir
@command("mkdir")
def mkdir(ctx: CommandContext) -> int:
    args = list(ctx.args)
    # -m MODE takes a value; the sim does not model permissions, so it is accepted and ignored.
    cleaned: list[str] = []
    while args:
        arg = args.pop(0)
        if arg == "-m" and args:
            args.pop(0)
        elif arg.startswith("-m") and len(arg) > 2:
            continue
        else:
            cleaned.append(arg)
    ctx.args = cleaned
    parsed = _parse_flags(ctx, "pv")
    if parsed is None:
        return 1
    flags, operands = parsed
    if not operands:
        return ctx.fail("Needs 1 argument")
    status = 0
    for arg in operands:
        device = ctx.path(arg)
        try:
            _make_dir(ctx, device, parents="p" in flags)
        except OSError as exc:
            _error(ctx, arg, exc, quote=True)
            status = 1
    return status


def _make_dir(ctx: CommandContext, device: str, parents: bool) -> None:
    host = ctx.phone.host_path(device)
    if host.is_dir():
        if parents:
            return
        raise OSError(errno.EEXIST, os.strerror(errno.EEXIST))
    if host.exists():
        raise OSError(errno.EEXIST if not parents else errno.ENOTDIR, os.strerror(errno.EEXIST))
    parent = posixpath.dirname(device) or "/"
    if not ctx.phone.host_path(parent).is_dir():
        if not parents:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        _make_dir(ctx, parent, parents=True)
    phonefs.require_writable(ctx.phone, device)
    host.mkdir()


# -------------------------------------------------------------------------- touch
@command("touch")
def touch(ctx: CommandContext) -> int:
    parsed = _parse_flags(ctx, "acmh")
    if parsed is None:
        return 1
    flags, operands = parsed
    if not operands:
        return ctx.fail("Needs 1 argument")
    status = 0
    for arg in operands:
        device = ctx.path(arg)
        host = ctx.phone.host_path(device)
        try:
            if host.exists():
                if ctx.phone.is_read_only(device):
                    raise OSError(errno.EROFS, os.strerror(errno.EROFS))
                os.utime(host)
            elif "c" not in flags:
                phonefs.require_writable(ctx.phone, device)
                host.touch()
        except OSError as exc:
            _error(ctx, arg, exc, quote=True)
            status = 1
    return status
