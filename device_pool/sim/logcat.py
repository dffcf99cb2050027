"""The virtual phone's log buffer and ``logcat``: what its apps and system services log, read the way
Android's ``logcat`` reads its buffers.

The phone keeps the last ``CAPACITY`` entries in memory (a reboot or factory reset empties them, as on
a phone). ``logcat`` as a whole command line without ``-d``/``-c``/``-t`` streams until the host
closes the stream (``serve``, chosen by ``adbd_services`` as for ``screenrecord``); everywhere else —
with those flags, in a pipe, in a list — it prints what the buffer holds and ends, as ``-d`` does.
Options: ``-d``, ``-c``, ``-t N``, ``-T N``, ``-m N``, ``-s``, ``-v brief|tag|time|threadtime``,
``-e``/``--regex RE``, ``--pid N``, ``-b BUFFER`` (one buffer here, ``main``), and filter specs
``TAG:P`` / ``*:P`` with P one of V D I W E F S. docs/virtual-phone.md ("logcat").
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from device_pool.sim.command_line import lone_command

if TYPE_CHECKING:
    from device_pool.sim.stream import Stream

__all__ = ["CAPACITY", "LogBuffer", "LogEntry", "LogcatUsage", "Options", "app_pid", "parse", "streaming_argv"]

CAPACITY = 5000
PRIORITIES = "VDIWEFS"
SYSTEM_PID = 570  # system_server: the activity and package managers log as it


def app_pid(package: str) -> int:
    """A stable pid per package, in the range Android gives app processes."""
    return 3000 + zlib.crc32(package.encode()) % 20000


@dataclass(frozen=True)
class LogEntry:
    seq: int
    time: float  # seconds since the epoch
    pid: int
    tid: int
    priority: str  # one of V D I W E F
    tag: str
    message: str


class LogBuffer:
    """The phone's ring of log entries; thread-safe. Listeners are called (from the writing thread)
    after each entry, so a streaming reader wakes without polling."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._seq = 0
        self._listeners: set[Callable[[], None]] = set()

    def write(self, priority: str, tag: str, message: str, *, pid: int = SYSTEM_PID, tid: int | None = None) -> None:
        with self._lock:
            self._seq += 1
            self._entries.append(LogEntry(self._seq, time.time(), pid, tid or pid, priority, tag, message))
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def since(self, seq: int) -> list[LogEntry]:
        with self._lock:
            return [e for e in self._entries if e.seq > seq]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def listen(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Add a listener; returns the function that removes it."""
        with self._lock:
            self._listeners.add(listener)
        return lambda: self._remove(listener)

    def _remove(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.discard(listener)


class LogcatUsage(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Options:
    dump: bool = False
    clear: bool = False
    tail: int | None = None  # -t / -T: the last N entries
    follow_after_tail: bool = False  # -T: then keep reading
    max_count: int | None = None
    fmt: str = "threadtime"
    regex: re.Pattern[str] | None = None
    pid: int | None = None
    default_priority: str = "V"
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def streams(self) -> bool:
        return not (self.dump or self.clear or (self.tail is not None and not self.follow_after_tail))

    def wants(self, entry: LogEntry) -> bool:
        floor = self.tags.get(entry.tag, self.default_priority)
        if PRIORITIES.index(entry.priority) < PRIORITIES.index(floor):
            return False
        if self.pid is not None and entry.pid != self.pid:
            return False
        return self.regex is None or self.regex.search(entry.message) is not None

    def format(self, entry: LogEntry) -> str:
        stamp = time.strftime("%m-%d %H:%M:%S", time.gmtime(entry.time)) + f".{int(entry.time * 1000) % 1000:03d}"
        p, tag, msg = entry.priority, entry.tag, entry.message
        if self.fmt == "brief":
            return f"{p}/{tag}({entry.pid:5d}): {msg}"
        if self.fmt == "tag":
            return f"{p}/{tag}: {msg}"
        if self.fmt == "time":
            return f"{stamp} {p}/{tag}({entry.pid:5d}): {msg}"
        return f"{stamp} {entry.pid:5d} {entry.tid:5d} {p} {tag}: {msg}"

    def select(self, entries: list[LogEntry]) -> Iterator[LogEntry]:
        chosen = [e for e in entries if self.wants(e)]
        if self.tail is not None:
            chosen = chosen[-self.tail :] if self.tail else []
        yield from chosen


_FORMATS = ("brief", "tag", "time", "threadtime")


def parse(args: list[str]) -> Options:
    """``logcat``'s arguments; raises LogcatUsage with the message logcat prints."""
    opts = Options()
    it = iter(args)
    for arg in it:
        if arg in ("-d",):
            opts.dump = True
        elif arg == "-c":
            opts.clear = True
        elif arg == "-s":
            opts.default_priority = "S"
        elif arg in ("-t", "-T", "-m", "-v", "-e", "--regex", "--pid", "-b"):
            value = next(it, None)
            if value is None:
                raise LogcatUsage(f"logcat: option requires an argument -- '{arg.lstrip('-')}'")
            _option(opts, arg, value)
        elif arg.startswith("--") and "=" in arg:
            name, _, value = arg.partition("=")
            _option(opts, name, value)
        elif arg.startswith("-"):
            raise LogcatUsage(f"logcat: invalid option -- '{arg.lstrip('-')}'")
        else:
            _filter(opts, arg)
    return opts


def _option(opts: Options, name: str, value: str) -> None:
    if name in ("-t", "-T", "-m", "--pid"):
        if not value.isdigit():
            raise LogcatUsage(f"logcat: {name} needs a number, got '{value}'")
        number = int(value)
        if name == "--pid":
            opts.pid = number
        elif name == "-m":
            opts.max_count = number
        else:
            opts.tail, opts.follow_after_tail = number, name == "-T"
    elif name == "-v":
        if value not in _FORMATS:
            raise LogcatUsage(f"logcat: unknown format '{value}' (one of {', '.join(_FORMATS)})")
        opts.fmt = value
    elif name in ("-e", "--regex"):
        try:
            opts.regex = re.compile(value)
        except re.error as exc:
            raise LogcatUsage(f"logcat: bad regex '{value}': {exc}") from exc
    elif name == "-b" and value not in ("main", "all", "default", "system"):
        raise LogcatUsage(f"logcat: unknown buffer '{value}' (the virtual phone keeps one: main)")


def _filter(opts: Options, spec: str) -> None:
    tag, _, priority = spec.rpartition(":") if ":" in spec else (spec, "", "V")
    priority = priority.upper() or "V"
    if priority not in PRIORITIES or not tag:
        raise LogcatUsage(f"logcat: invalid filter expression '{spec}'")
    if tag == "*":
        opts.default_priority = priority
    else:
        opts.tags[tag] = priority


def streaming_argv(command: str) -> list[str] | None:
    """The arguments when ``command`` is one ``logcat`` that keeps reading, else None."""
    args = lone_command(command, "logcat")
    if args is None:
        return None
    try:
        opts = parse(args)
    except LogcatUsage:
        return None  # the ordinary shell prints the usage error
    return args if opts.streams else None


async def serve(buffer: LogBuffer, argv: list[str], v2: bool, stream: Stream) -> None:
    """Write matching entries (the tail first, with -T) until the host closes the stream or -m is met."""
    from device_pool.sim.adbd_services import ID_EXIT, ID_STDOUT, v2_packet

    opts = parse(argv)
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    drain = asyncio.create_task(stream.drain_input())
    drain.add_done_callback(lambda _: wake.set())
    stop_listening = buffer.listen(lambda: loop.call_soon_threadsafe(wake.set))
    sent = 0
    try:
        backlog = buffer.since(0)
        seq = backlog[-1].seq if backlog else 0
        pending = list(opts.select(backlog))  # what the buffer holds (its tail with -T), then new entries
        while not drain.done():
            lines = []
            for entry in pending:
                if opts.max_count is not None and sent >= opts.max_count:
                    return
                lines.append(opts.format(entry) + "\n")
                sent += 1
            if lines:
                data = "".join(lines).encode("utf-8", "replace")
                await stream.write(v2_packet(ID_STDOUT, data) if v2 else data)
            if opts.max_count is not None and sent >= opts.max_count:
                return
            await wake.wait()
            wake.clear()
            fresh = buffer.since(seq)
            if fresh:
                seq = fresh[-1].seq
            pending = [e for e in fresh if opts.wants(e)]
    finally:
        stop_listening()
        drain.cancel()
        if v2 and not stream.closed:
            await stream.write(v2_packet(ID_EXIT, b"\x00"))
