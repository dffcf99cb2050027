"""Where command output goes: the ordered result of a shell run, pipe buffers, files, /dev/null."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["BufferSink", "FileSink", "NullSink", "ResultSink", "ShellResult"]


@dataclass
class ShellResult:
    output: list[tuple[int, bytes]]  # (1 = stdout | 2 = stderr, bytes), in the order written
    exit_code: int

    @property
    def stdout(self) -> bytes:
        return b"".join(data for fd, data in self.output if fd == 1)

    @property
    def stderr(self) -> bytes:
        return b"".join(data for fd, data in self.output if fd == 2)


class ResultSink:
    """Appends to the shared result list, merging consecutive writes to the same stream."""

    def __init__(self, output: list[tuple[int, bytes]], fd: int) -> None:
        self.output = output
        self.fd = fd

    def write(self, data: bytes) -> None:
        if self.output and self.output[-1][0] == self.fd and len(self.output[-1][1]) < 65536:
            self.output[-1] = (self.fd, self.output[-1][1] + data)
        else:
            self.output.append((self.fd, data))


class BufferSink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


class NullSink:
    def write(self, data: bytes) -> None:
        pass


class FileSink:
    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh

    def write(self, data: bytes) -> None:
        self.fh.write(data)
