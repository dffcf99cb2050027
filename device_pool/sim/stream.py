"""One adb stream inside a connection, with adbd's flow control.

The device may send one WRTE right after it opens (or accepts) a stream, then waits for the host's
OKAY before each further WRTE. Inbound WRTEs are acknowledged when the service
takes the data, which is the backpressure a slow service needs; services that ignore their input
drain it (``drain_input``) so the host never stalls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from device_pool.sim.transport import A_CLSE, A_OKAY, A_WRTE, Message

Send = Callable[[Message], Awaitable[None]]


class StreamClosed(Exception):
    """The host closed the stream (or the connection went away)."""


class Stream:
    def __init__(self, local_id: int, remote_id: int, send: Send, max_data: int) -> None:
        self.local_id = local_id
        self.remote_id = remote_id
        self._send = send
        self._max_data = max_data
        self._can_write = asyncio.Event()
        self._can_write.set()  # OPEN implies ready
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False

    @property
    def max_data(self) -> int:
        """The largest WRTE payload this stream sends."""
        return self._max_data

    # --- called by the connection -------------------------------------------------------------
    def on_okay(self) -> None:
        self._can_write.set()

    def on_write(self, data: bytes) -> None:
        self._inbox.put_nowait(data)

    def on_close(self) -> None:
        """The host closed the stream: wake everyone waiting on it."""
        self.closed = True
        self._can_write.set()
        self._inbox.put_nowait(None)

    # --- used by services -----------------------------------------------------------------------
    async def read(self) -> bytes | None:
        """The next chunk the host wrote, or None once the host closed the stream."""
        if self.closed and self._inbox.empty():
            return None
        data = await self._inbox.get()
        if data is None:
            return None
        await self._send(Message(A_OKAY, self.local_id, self.remote_id))
        return data

    async def drain_input(self) -> None:
        """Acknowledge and drop everything the host writes until it closes."""
        while await self.read() is not None:
            pass

    async def write(self, data: bytes) -> None:
        """Send ``data`` in WRTEs no larger than the negotiated maximum, one in flight at a time."""
        view = memoryview(data)
        for start in range(0, len(view), self._max_data):
            await self._can_write.wait()
            if self.closed:
                raise StreamClosed()
            self._can_write.clear()
            await self._send(
                Message(A_WRTE, self.local_id, self.remote_id, bytes(view[start : start + self._max_data]))
            )

    async def close(self) -> None:
        """Close from the device side (the service finished)."""
        if self.closed:
            return
        self.closed = True
        self._inbox.put_nowait(None)
        await self._send(Message(A_CLSE, self.local_id, self.remote_id))
