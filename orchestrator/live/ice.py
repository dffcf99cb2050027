"""ICE for the live view: STUN/TURN servers from settings, and the host addresses candidates use.

aioice (under aiortc) offers every interface's address except loopback, and falls back to Google's
public STUN server when given no ICE servers at all. Neither suits every deployment: a test on one
machine needs 127.0.0.1, a server with many interfaces should offer the reachable one, and an
offline host must not wait on an unreachable STUN server. So the configured STUN/TURN list is always
passed (empty means none), and ``pin_host_addresses`` replaces aioice's address lookup — aioice has no
per-connection option for it — with the configured list. That lookup is process-wide: every peer
connection in the process (the API's, and a test's own client) then uses those addresses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from orchestrator.settings import IceServer

__all__ = ["browser_ice_servers", "pin_host_addresses", "rtc_configuration"]

_aioice_host_addresses = aioice.ice.get_host_addresses


def pin_host_addresses(addresses: Sequence[str]) -> None:
    """Offer only ``addresses`` as host candidates (IPv6 ones contain ':'); empty: aioice's own choice."""
    if not addresses:
        aioice.ice.get_host_addresses = _aioice_host_addresses
        return
    pinned = list(addresses)

    def configured_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in pinned if (use_ipv6 if ":" in a else use_ipv4)]

    aioice.ice.get_host_addresses = configured_addresses


def rtc_configuration(servers: Sequence[IceServer]) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=list(s.urls),
                username=s.username,
                credential=s.credential.get_secret_value() if s.credential else None,
            )
            for s in servers
        ]
    )


def browser_ice_servers(servers: Sequence[IceServer]) -> list[dict[str, Any]]:
    """The same servers as a browser's ``RTCPeerConnection({iceServers})`` takes them."""
    out: list[dict[str, Any]] = []
    for s in servers:
        entry: dict[str, Any] = {"urls": list(s.urls)}
        if s.username is not None:
            entry["username"] = s.username
        if s.credential is not None:
            entry["credential"] = s.credential.get_secret_value()
        out.append(entry)
    return out
