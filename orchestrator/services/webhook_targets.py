"""Where a webhook may be sent: public addresses only, unless the operator allows private ones.

A task's ``webhook_url`` is chosen by whoever holds an API key, and the deliverer POSTs it from
inside the deployment. Unchecked, any tenant could make PhoneFleet call the database, the model
server, the Docker engine, a cloud metadata endpoint (169.254.169.254) or anything else on the
private network, and read the start of its answer back from the delivery log (server-side request
forgery). So by default outside ``env=dev``, a webhook goes only to globally routable addresses:

- ``TargetPolicy.check_url`` refuses, at submission, a URL whose host is a literal non-public
  address or ``localhost`` (422 ``webhook_target_refused``): the integrator learns at once;
- ``GuardedTransport`` checks at every attempt what the host name resolves to, refuses the delivery
  if any address is not public (the delivery ends ``failed`` at once, with the reason in
  ``last_error``), and connects to the address it checked, keeping the name for the Host header and
  TLS (SNI and certificate), so a second lookup cannot swap in a private address (DNS rebinding).
  It keeps no connections alive and uses no proxy (``TargetPolicy.transport``).

``webhooks.allow_private_targets`` (default: allowed when ``env`` is ``dev``, so ``phonefleet up``
works with a receiver on the same machine) turns both off, for deployments whose receivers are
internal services.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from orchestrator.errors import InvalidRequest
from orchestrator.settings import Settings

__all__ = ["GuardedTransport", "TargetPolicy", "TargetRefused", "WebhookTargetRefused", "not_public"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) → the addresses it resolves to, as strings; the default asks the system resolver.
Resolver = Callable[[str, int], Awaitable[list[str]]]
_SETTING = "PHONEFLEET_WEBHOOKS__ALLOW_PRIVATE_TARGETS=true"


class WebhookTargetRefused(InvalidRequest):
    """A task's ``webhook_url`` points at a private address and the policy allows public ones only."""

    code = "webhook_target_refused"


class TargetRefused(Exception):
    """Raised by ``GuardedTransport`` instead of connecting; the message says which address and why."""


# IPv6 ranges that reach IPv4 hosts or are not for public use, beyond what ``is_global`` knows.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are the IPv4 host
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible addresses (::a.b.c.d)
_REFUSED_V6 = {
    ipaddress.IPv6Network("64:ff9b:1::/48"): "local NAT64",
    ipaddress.IPv6Network("::ffff:0:0:0/96"): "IPv4-translated",
    ipaddress.IPv6Network("fec0::/10"): "site-local",
    ipaddress.IPv6Network("2001::/32"): "Teredo tunnel",
}


def not_public(address: Address) -> str | None:
    """Why ``address`` is no webhook target (loopback, private, link-local…), None if it is public.

    IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4, IPv4-compatible) are judged by that
    address: ``64:ff9b::a9fe:a9fe`` reaches 169.254.169.254 through a NAT64 gateway.
    """
    if isinstance(address, ipaddress.IPv6Address):
        for network, reason in _REFUSED_V6.items():
            if address in network:
                return reason
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and (address in _NAT64 or (address in _COMPATIBLE and int(address) > 1)):
            embedded = ipaddress.IPv4Address(address.packed[-4:])
        if embedded is not None:
            address = embedded
    if address.is_global and not address.is_multicast:
        return None
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "not globally routable"


@dataclass(frozen=True)
class TargetPolicy:
    """Whether webhooks may go to non-public addresses (``webhooks.allow_private_targets``)."""

    allow_private: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> TargetPolicy:
        allow = settings.webhooks.allow_private_targets
        return cls(settings.env == "dev" if allow is None else allow)

    def check_url(self, url: str | None) -> None:
        """Refuse (``WebhookTargetRefused``, 422) a URL whose host is a literal non-public address or
        ``localhost``; names are checked when a delivery resolves them (``GuardedTransport``)."""
        if url is None or self.allow_private:
            return
        host = _ascii_host(httpx.URL(url)).rstrip(".").lower()
        if host == "localhost" or host.endswith(".localhost"):
            reason = "loopback"
        else:
            try:
                reason = not_public(ipaddress.ip_address(host))
            except ValueError:  # a name, not an address
                return
        if reason is not None:
            raise WebhookTargetRefused(
                f"webhook_url: {host} is a {reason} address, and webhooks go only to public addresses "
                f"here (an operator can allow private ones: {_SETTING})"
            )

    def transport(self, *, resolver: Resolver | None = None) -> httpx.AsyncBaseTransport | None:
        """The transport of the deliverer's client; None (httpx's default, which honours the
        environment's proxies) when private targets are allowed.

        Guarded, the client connects to the checked address itself, so it uses no proxy, and it
        keeps no connection alive: a kept connection is found by address, and one verified for
        another name on the same address would carry this request without a certificate check.
        """
        if self.allow_private:
            return None
        inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
        return GuardedTransport(inner, resolver=resolver)


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolves each request's host, refuses non-public addresses, connects to the checked one."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, resolver: Resolver | None = None) -> None:
        self.inner = inner
        self.resolve = resolver or _system_resolver

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host, port = _ascii_host(url), url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await self.resolve(host, port)]
        except OSError as exc:  # no such name: worth another attempt later, like a refused connection
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
        if not addresses:
            raise httpx.ConnectError(f"{host} resolves to no address", request=request)
        for address in addresses:
            reason = not_public(address)
            if reason is not None:
                raise TargetRefused(
                    f"refused: {host} resolves to {address}, a {reason} address; webhooks go only to "
                    f"public addresses here (an operator can allow private ones: {_SETTING})"
                )
        # The Host header was set from the URL when the request was built; TLS keeps the name too.
        request.url = url.copy_with(host=str(addresses[0]))
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _ascii_host(url: httpx.URL) -> str:
    """The host as sent (IDNA-encoded ``xn--…``): what DNS, TLS and the Host header must all agree
    on. ``url.host`` decodes it, and Python's resolver re-encodes with older IDNA rules (ß → ss: a
    different domain), or fails on names that IDNA 2008 refuses."""
    return url.raw_host.decode("ascii")


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
