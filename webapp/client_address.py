"""Who the client is, behind the reverse proxies named in TRUSTED_PROXIES (CIDRs).

Only a connection from a trusted proxy has its forwarding headers believed: `X-Forwarded-For`
(walked from the right, past every trusted address: the first one not trusted is the client,
since anything left of it was written by the client itself), else RFC 7239 `Forwarded`'s
`for=`, else `X-Real-IP`. The proxy must write (append to) X-Forwarded-For, as ingress-nginx,
Traefik, Caddy and HAProxy do. From any other peer, the socket's address is the client and
the headers are ignored: a direct client cannot pick its rate-limit bucket or pass for loopback.

`real_client` (the first middleware) replaces `request.remote` with that address, so the
per-IP rate limit, the access log and the /metrics loopback check all see the same client;
`VIA_PROXY` says whether the request came through a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDictProxy

from webapp import keys

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
VIA_PROXY = web.RequestKey("via_proxy", bool)


def _address(text: str) -> IPAddress | None:
    """An address as headers write it: `203.0.113.7`, `"[2001:db8::1]:4711"`, `1.2.3.4:80`."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def _chain(headers: CIMultiDictProxy[str], forwarded: Iterable[object]) -> list[str]:
    """The forwarded-for hops, oldest first, from the first header that has any."""
    hops = [hop for value in headers.getall("X-Forwarded-For", []) for hop in value.split(",")]
    if hops:
        return hops
    hops = [str(item["for"]) for item in forwarded if isinstance(item, Mapping) and "for" in item]
    if hops:
        return hops
    return headers.getall("X-Real-IP", [])[-1:]


def resolve(
    peer: str | None,
    headers: CIMultiDictProxy[str],
    forwarded: Iterable[object],
    proxies: Sequence[IPNetwork],
) -> tuple[str | None, bool]:
    """`(client address, came through a trusted proxy)`."""
    peer_address = _address(peer) if peer else None
    if peer_address is None or not proxies or not _trusted(peer_address, proxies):
        return peer, False
    client = peer_address
    for hop in reversed(_chain(headers, forwarded)):
        address = _address(hop)
        if address is None:  # garbage left of a trusted hop: the last address we can vouch for
            break
        client = address
        if not _trusted(address, proxies):
            break
    return str(client), True


@web.middleware
async def real_client(request: web.Request, handler: Handler) -> web.StreamResponse:
    proxies = request.app[keys.SETTINGS].trusted_proxies
    if not proxies:
        return await handler(request)
    client, via_proxy = resolve(request.remote, request.headers, request.forwarded, proxies)
    if via_proxy and client is not None:
        request = request.clone(remote=client)
        request[VIA_PROXY] = True
    return await handler(request)


def forwarded_by_untrusted(request: web.Request) -> bool:
    """The request carries forwarding headers but did not come through a trusted proxy: a proxy
    nobody configured (or a client pretending), so its socket address says nothing."""
    return not request.get(VIA_PROXY, False) and any(name in request.headers for name in FORWARDING_HEADERS)
