"""Runs parsed command lines against a VirtualPhone: expansion, redirection, pipes, exit statuses.

Pipelines run their stages one after another, each stage's stdout buffered into the next one's
stdin: the phone's tools all terminate on their own, so nothing needs to run concurrently, and the
order of stdout/stderr chunks stays exactly the order they were written in.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

from device_pool.sim.shell import commands as _commands  # noqa: F401  (fills the command table)
from device_pool.sim.shell import phonefs
from device_pool.sim.shell.output import BufferSink, FileSink, NullSink, ResultSink, ShellResult
from device_pool.sim.shell.registry import (
    CommandContext,
    OutputStream,
    ShellExit,
    ShellState,
    Sink,
    lookup,
)
from device_pool.sim.shell.syntax import (
    AndOr,
    CommandSub,
    Lit,
    Param,
    Pipeline,
    Redirect,
    Script,
    ShellSyntaxError,
    SimpleCommand,
    Subshell,
    Word,
    iter_commands,
)

if TYPE_CHECKING:
    from device_pool.sim.phone import VirtualPhone

__all__ = ["SHELL_NAME", "ShellResult", "run_shell"]

logger = logging.getLogger(__name__)

SHELL_NAME = "/system/bin/sh"

# What `adb shell env` shows on an Android 13 phone (minus per-boot values).
_BASE_ENV = {
    "PATH": "/product/bin:/apex/com.android.runtime/bin:/apex/com.android.art/bin:/system_ext/bin"
    ":/system/bin:/system/xbin:/odm/bin:/vendor/bin:/vendor/xbin",
    "ANDROID_DATA": "/data",
    "ANDROID_ROOT": "/system",
    "ANDROID_STORAGE": "/storage",
    "EXTERNAL_STORAGE": "/sdcard",
    "ASEC_MOUNTPOINT": "/mnt/asec",
    "HOME": "/",
    "SHELL": "/bin/sh",
    "TMPDIR": "/data/local/tmp",
    "USER": "shell",
    "LOGNAME": "shell",
    "HOSTNAME": "localhost",
    "IFS": " \t\n",
}

_PID = 4242  # what $$ answers; the phone has no real process table


class _RedirectError(Exception):
    pass


@dataclass
class _Fds:
    stdin: bytes
    out: Sink
    err: Sink


def run_shell(phone: VirtualPhone, command_line: str, stdin: bytes = b"") -> ShellResult:
    """Run ``command_line`` as ``/system/bin/sh -c`` would on the phone; never raises for bad input."""
    output: list[tuple[int, bytes]] = []
    shell = _Shell(phone, ShellState(env=dict(_BASE_ENV)))
    fds = _Fds(stdin, ResultSink(output, 1), ResultSink(output, 2))
    try:
        for script in iter_commands(command_line):
            shell.run_script(script, fds)
    except ShellSyntaxError as exc:
        fds.err.write(f"{SHELL_NAME}: {exc.message}\n".encode())
        shell.state.status = 1
    except ShellExit as exc:
        shell.state.status = exc.code
    return ShellResult(output, shell.state.status & 0xFF)


class _Shell:
    def __init__(self, phone: VirtualPhone, state: ShellState) -> None:
        self.phone = phone
        self.state = state

    # ------------------------------------------------------------- structure
    def run_script(self, script: Script, fds: _Fds) -> int:
        for item in script.items:
            self.run_and_or(item, fds)
        return self.state.status

    def run_and_or(self, item: AndOr, fds: _Fds) -> int:
        status = self.run_pipeline(item.first, fds)
        for op, pipeline in item.rest:
            if (op == "&&") == (status == 0):
                status = self.run_pipeline(pipeline, fds)
        return status

    def run_pipeline(self, pipeline: Pipeline, fds: _Fds) -> int:
        stdin = fds.stdin
        status = 0
        last = len(pipeline.commands) - 1
        for index, cmd in enumerate(pipeline.commands):
            if index == last:
                stage = _Fds(stdin, fds.out, fds.err)
                status = self.run_command(cmd, stage)
            else:
                buffer = BufferSink()
                status = self.run_command(cmd, _Fds(stdin, buffer, fds.err))
                stdin = bytes(buffer.data)
        if pipeline.negated:
            status = 0 if status else 1
        self.state.status = status
        return status

    def run_command(self, cmd: SimpleCommand | Subshell, fds: _Fds) -> int:
        if isinstance(cmd, Subshell):
            return self._run_subshell(cmd, fds)
        return self._run_simple(cmd, fds)

    def _run_subshell(self, cmd: Subshell, fds: _Fds) -> int:
        child = _Shell(self.phone, self.state.copy())
        opened: list[object] = []
        try:
            inner = self._apply_redirects(cmd.redirects, fds, opened)
        except _RedirectError:
            return 1
        try:
            child.run_script(cmd.body, inner)
            return child.state.status
        except ShellExit as exc:
            return exc.code
        finally:
            _close_all(opened)

    def _run_simple(self, cmd: SimpleCommand, fds: _Fds) -> int:
        argv: list[str] = []
        for word in cmd.words:
            argv.extend(self.expand(word, fds))
        assigned = {name: self.expand_one(value, fds) for name, value in cmd.assignments}
        opened: list[object] = []
        try:
            local = self._apply_redirects(cmd.redirects, fds, opened)
        except _RedirectError:
            return 1
        try:
            if not argv:
                # Plain assignments change the shell itself; a substitution's status carries over.
                self.state.env.update(assigned)
                return self.state.status if cmd.assignments else 0
            return self._invoke(argv, assigned, local)
        finally:
            _close_all(opened)

    def _invoke(self, argv: list[str], assigned: dict[str, str], fds: _Fds) -> int:
        name = argv[0]
        handler = lookup(name)
        err = OutputStream(fds.err)
        if handler is None:
            err.println(f"{SHELL_NAME}: {name}: inaccessible or not found")
            return 127
        env = {**self.state.env, **assigned}
        ctx = CommandContext(
            phone=self.phone,
            name=posixpath.basename(name),
            args=argv[1:],
            stdin=fds.stdin,
            stdout=OutputStream(fds.out),
            stderr=err,
            env=env,
            state=self.state,
        )
        try:
            return int(handler(ctx)) & 0xFF
        except ShellExit:
            raise
        except Exception as exc:
            # A bug in a handler must not take the adb connection down; it is logged with its
            # traceback and the client sees a failed command, as with a crashing tool on Android.
            logger.exception("shell command failed", extra={"command": argv[0], "argv": argv[1:]})
            err.println(f"{ctx.name}: {exc.__class__.__name__}: {exc}")
            return 1

    # ----------------------------------------------------------- redirection
    def _apply_redirects(self, redirects: tuple[Redirect, ...], fds: _Fds, opened: list[object]) -> _Fds:
        current = {0: fds.stdin, 1: fds.out, 2: fds.err}
        for redirect in redirects:
            target = self.expand_one(redirect.target, fds)
            if redirect.op in (">&", "<&"):
                if target == "-":
                    current[redirect.fd] = NullSink() if redirect.fd else b""
                elif target.isdigit() and int(target) in current:
                    current[redirect.fd] = current[int(target)]
                elif redirect.op == ">&" and not target.isdigit():
                    current[redirect.fd] = self._open_write(target, False, fds, opened)
                else:
                    self._bad_fd(target, fds)
                continue
            if redirect.op == "<":
                current[redirect.fd] = self._open_read(target, fds)
                continue
            sink = self._open_write(target, redirect.op == ">>", fds, opened)
            if redirect.op == "&>":
                current[1] = current[2] = sink
            else:
                current[redirect.fd] = sink
        stdin = current[0]
        out, err = current[1], current[2]
        return _Fds(
            stdin if isinstance(stdin, bytes) else b"",
            out if not isinstance(out, bytes) else NullSink(),
            err if not isinstance(err, bytes) else NullSink(),
        )

    def _bad_fd(self, target: str, fds: _Fds) -> None:
        fds.err.write(f"{SHELL_NAME}: {target}: bad file descriptor\n".encode())
        raise _RedirectError

    def _open_write(self, target: str, append: bool, fds: _Fds, opened: list[object]) -> Sink:
        path = self._device_path(target)
        if path in phonefs.DISCARD_PATHS:
            return NullSink()
        if path in ("/dev/stdout", "/dev/tty", "/proc/self/fd/1"):
            return fds.out
        if path in ("/dev/stderr", "/proc/self/fd/2"):
            return fds.err
        try:
            phonefs.require_writable(self.phone, path)
            host = self.phone.host_path(path)
            if host.is_dir():
                raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
            fh = host.open("ab" if append else "wb")
        except OSError as exc:
            fds.err.write(f"{SHELL_NAME}: can't create {target}: {phonefs.describe_error(exc)}\n".encode())
            raise _RedirectError from exc
        opened.append(fh)
        return FileSink(fh)

    def _open_read(self, target: str, fds: _Fds) -> bytes:
        path = self._device_path(target)
        try:
            return phonefs.read_bytes(self.phone, path)
        except OSError as exc:
            fds.err.write(f"{SHELL_NAME}: can't open {target}: {phonefs.describe_error(exc)}\n".encode())
            raise _RedirectError from exc

    def _device_path(self, target: str) -> str:
        return "/" + posixpath.normpath(posixpath.join(self.state.cwd, target)).lstrip("/")

    # ------------------------------------------------------------- expansion
    def expand_one(self, word: Word, fds: _Fds) -> str:
        """A word expanded without field splitting or globbing (assignment values, redirect targets)."""
        return "".join(text for text, _quoted in self._segments(word, fds))

    def expand(self, word: Word, fds: _Fds) -> list[str]:
        """A word expanded to fields: variables and substitutions, field splitting, then globbing."""
        fields: list[list[tuple[str, bool]]] = []
        current: list[tuple[str, bool]] = []
        ifs = self.state.env.get("IFS", " \t\n")
        for part in word.parts:
            if isinstance(part, Lit):
                current.append((part.text, part.quoted))
                continue
            value = self._value(part, fds)
            if part.quoted:
                current.append((value, True))
                continue
            # Unquoted expansion: split on IFS whitespace.
            pieces = _split_ifs(value, ifs)
            if not pieces:
                continue
            if value[0] in ifs and current:
                fields.append(current)
                current = []
            for i, piece in enumerate(pieces):
                if i:
                    fields.append(current)
                    current = []
                current.append((piece, False))
            if value[-1] in ifs:
                fields.append(current)
                current = []
        if current:
            fields.append(current)
        result: list[str] = []
        for segments in fields:
            text = "".join(t for t, _q in segments)
            if any(not q and phonefs.has_glob(t) for t, q in segments):
                pattern = "".join(t if not q else _escape_glob(t) for t, q in segments)
                matches = phonefs.expand_glob(self.phone, self.state.cwd, pattern)
                if matches:
                    result.extend(matches)
                    continue
            result.append(text)
        return result

    def _segments(self, word: Word, fds: _Fds) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        for part in word.parts:
            if isinstance(part, Lit):
                out.append((part.text, part.quoted))
            else:
                out.append((self._value(part, fds), part.quoted))
        return out

    def _value(self, part: Param | CommandSub, fds: _Fds) -> str:
        if isinstance(part, CommandSub):
            buffer = BufferSink()
            child = _Shell(self.phone, self.state.copy())
            try:
                child.run_script(part.body, _Fds(b"", buffer, fds.err))
            except ShellExit as exc:
                child.state.status = exc.code
            self.state.status = child.state.status
            return bytes(buffer.data).decode("utf-8", "surrogateescape").rstrip("\n")
        value = self._param(part.name)
        if not value and part.default is not None:
            return self.expand_one(part.default, fds)
        return value

    def _param(self, name: str) -> str:
        if name == "?":
            return str(self.state.status)
        if name == "$":
            return str(_PID)
        if name in ("#",):
            return "0"
        if name == "0":
            return SHELL_NAME
        if name == "-":
            return "hc"
        if name in ("@", "*", "!") or name.isdigit():
            return ""
        return self.state.env.get(name, "")


def _split_ifs(value: str, ifs: str) -> list[str]:
    pieces: list[str] = []
    buf: list[str] = []
    for ch in value:
        if ch in ifs:
            if buf:
                pieces.append("".join(buf))
                buf = []
        else:
            buf.append(ch)
    if buf:
        pieces.append("".join(buf))
    return pieces


def _escape_glob(text: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


def _close_all(handles: list[object]) -> None:
    for fh in handles:
        fh.close()  # type: ignore[attr-defined]
