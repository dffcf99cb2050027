"""ADB tunnels: a session's phone reached with the real ``adb`` through the API, never at its own address.

The phone's adbd speaks adb's device-side protocol (docs/adb.md, "Messages") on its TCP address,
which only the fleet's hosts reach. A tunnel relays that byte stream, unchanged, between a WebSocket
on the API (``/api/v1/sessions/{id}/adb``, authenticated by the caller's API key) and a TCP
connection the API opens to the phone. On the caller's machine ``phonefleet adb SESSION_ID`` listens
on 127.0.0.1 and carries each connection over such a WebSocket, so the caller's own adb server sees an
ordinary TCP phone: ``adb connect 127.0.0.1:PORT``, then ``adb -s 127.0.0.1:PORT shell …``
(docs/security.md, "ADB tunnel").

Who may open one: the tenant whose active session holds the phone (any key of that tenant; another
tenant's session is a 404, as everywhere). How long it lives: ``watch`` re-reads the session and the
key every ``check_s`` seconds and ends the tunnel once the session is closed or expired, its lease is
gone, or the key was revoked.

Why relay the phone's own protocol rather than the adb server's: the caller's adb client and server
stay ordinary (``adb connect`` works as it did with the raw address), and nothing between them and the
phone parses or rewrites adb. The cost: the API must reach the phone's TCP address (as the pool's adb
server does), so a USB handset has no tunnel (``AdbTunnelUnsupported``, 409), and a handset that asks
for adb AUTH asks it of the caller's adb key.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from device_pool.errors import DeviceOffline
from orchestrator.errors import AdbTunnelUnsupported, NoLiveDevice, NotFound, Unauthenticated
from orchestrator.services.auth import ApiKeyVerifier, Principal
from orchestrator.services.sessions import SessionService, SessionView

__all__ = ["AdbTunnels", "TunnelEnd", "phone_address"]


def phone_address(serial: str) -> tuple[str, int]:
    """``host:port`` of a TCP phone's adbd; raises ``AdbTunnelUnsupported`` for a USB serial."""
    host, sep, port = serial.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AdbTunnelUnsupported(
            "this session's phone is attached by USB to a pool host: it has no network address the API "
            "can tunnel adb to; use the device API (/api/v1/sessions/{id}/…) instead"
        )
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class TunnelEnd:
    """Why a tunnel ended, as a WebSocket close: ``code`` (4000 + the HTTP status) and ``reason``."""

    code: int
    reason: str


class AdbTunnels:
    """Opens the phone side of a session's tunnel and watches the session for its end."""

    def __init__(
        self, sessions: SessionService, verifier: ApiKeyVerifier, *, check_s: float = 1.0,
        connect_timeout_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.sessions = sessions
        self.verifier = verifier
        self.check_s = check_s
        self.connect_timeout_s = connect_timeout_s

    async def open(
        self, principal: Principal, session_id: uuid.UUID
    ) -> tuple[SessionView, asyncio.StreamReader, asyncio.StreamWriter]:
        """The session (the caller's, active, holding its phone) and a connection to its phone's adbd.

        Raises ``SessionNotFound`` (404, another tenant's too), ``NoLiveDevice`` (409, ended),
        ``AdbTunnelUnsupported`` (409, a USB phone), ``DeviceOffline`` (502, the phone did not answer).
        """
        view = await self.sessions.holding(principal, session_id)
        assert view.device is not None  # holding() answers only a session with its phone
        host, port = phone_address(view.device.serial)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise DeviceOffline(
                f"the session's phone did not accept the tunnel's connection: {type(exc).__name__}",
                device_id=str(view.device.id),
            ) from exc
        return view, reader, writer

    async def watch(self, principal: Principal, view: SessionView) -> TunnelEnd:
        """Returns once the tunnel must end: the session ended or lost its phone, or the key was revoked."""
        assert view.device is not None
        while True:
            await asyncio.sleep(self.check_s)
            try:
                await self.verifier.verify_key_id(principal.key_id)
                current = await self.sessions.holding(principal, view.session.id)
            except Unauthenticated as exc:
                return TunnelEnd(4401, exc.message)
            except (NoLiveDevice, NotFound) as exc:
                return TunnelEnd(4409, exc.message)
            if current.device is None or current.device.id != view.device.id:
                return TunnelEnd(4409, f"session {view.session.id} no longer holds the phone")
