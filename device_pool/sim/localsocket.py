"""Abstract-namespace local sockets on the virtual phone: what ``localabstract:NAME`` reaches.

On Android a process listens on an abstract socket (``LocalServerSocket(NAME)``) and the host reaches
it through adbd's ``localabstract:NAME`` service (what ``adb forward tcp:P localabstract:NAME`` opens
for each connection to P). Here a service of the phone listens by name and takes each adb stream
opened to that name, in order; opening a name nobody listens on is refused (adbd closes the stream).
"""

from __future__ import annotations

import asyncio
import weakref

from device_pool.sim.stream import Stream

__all__ = ["Listener", "listen", "serve"]

_LISTENERS: weakref.WeakKeyDictionary[object, dict[str, Listener]] = weakref.WeakKeyDictionary()


class Listener:
    """One listening name: ``accept()`` hands over the next stream a host opened to it."""

    def __init__(self, phone: object, name: str) -> None:
        self.phone, self.name = phone, name
        self._pending: asyncio.Queue[tuple[Stream, asyncio.Future[None]]] = asyncio.Queue()

    async def accept(self) -> tuple[Stream, asyncio.Future[None]]:
        """The next stream and a future to resolve once the listener is done with it (the adb stream
        stays open until then)."""
        return await self._pending.get()

    def close(self) -> None:
        names = _LISTENERS.get(self.phone, {})
        if names.get(self.name) is self:
            del names[self.name]
        while not self._pending.empty():  # connected but never accepted: closed
            _stream, done = self._pending.get_nowait()
            done.set_result(None)


def listen(phone: object, name: str) -> Listener:
    """Listen on ``name``; raises OSError when the name is taken (as Android's EADDRINUSE)."""
    names = _LISTENERS.setdefault(phone, {})
    if name in names:
        raise OSError(f"abstract socket {name!r} is already in use")
    listener = names[name] = Listener(phone, name)
    return listener


def serve(phone: object, name: str):  # type: ignore[no-untyped-def]
    """The adbd service for ``localabstract:NAME``, or None (refused) when nothing listens on it."""
    listener = _LISTENERS.get(phone, {}).get(name)
    if listener is None:
        return None

    async def connected(stream: Stream) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        listener._pending.put_nowait((stream, done))
        await done

    return connected
