"""Who is calling, as the access event records it: address, user agent and request id, each bounded.

Everything here comes from the client and ends in an immutable trail, so none
of it may make the event invalid (and the call unrecordable): a value that
does not fit is cut, escaped, replaced or dropped, never a reason to fail.

The address is the TCP peer unless the peer is a trusted proxy
(``producer.trusted_proxies``); then X-Forwarded-For names the client:

- ``serve.proxy_hops = 0``: read right to left past trusted proxies; the first
  untrusted address is the client. A client whose own address lies inside a
  trusted range is skipped like a proxy and so can name any address it likes:
  list the proxies, never client subnets.
- ``serve.proxy_hops = N``: the Nth address from the right, the one the
  outermost of N proxies appended. Whatever a client writes in front of it is
  never read.

IPv6 scope ids (``fe80::1%eth0``) are dropped: they name an interface of the
host that wrote them, can hold any text, and mean nothing on this one.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from sealtrail.event import USER_AGENT_MAX
from sealtrail.producers.context import AuditContext
from sealtrail.producers.middleware.proxies import Network, parse_address
from sealtrail.producers.outbound import new_event_id

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
# C0 and C1 controls, DEL, line and paragraph separators, bidi embeddings, overrides and isolates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """TEXT with every control or bidi character written as a \\xNN or \\uNNNN escape."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _trusted(ip: Address, nets: Sequence[Network]) -> bool:
    return any(ip in net for net in nets)


def client_address(peer: str | None, forwarded: str, trusted: Sequence[Network], hops: int = 0) -> str | None:
    """The client's address: the peer, or behind a trusted proxy the hop of X-Forwarded-For the proxies vouch for."""
    current = parse_address(peer)
    if current is None:
        return None
    if not forwarded or not _trusted(current, trusted):
        return str(current)
    listed = [h for h in forwarded.split(",") if h.strip()]
    if hops:
        if len(listed) < hops:  # fewer hops than proxies: believe the peer, which is certain
            return str(current)
        named = parse_address(listed[-hops])
        return str(named if named is not None else current)
    for hop in reversed(listed):
        ip = parse_address(hop)
        if ip is None:
            break  # garbage: believe only what trusted proxies vouched for so far
        current = ip
        if not _trusted(ip, trusted):
            break
    return str(current)


def limit_key(ip: str | None) -> str:
    """What a rate limit counts: the address, an IPv6 address's /64 (one host usually has all of it)."""
    if ip is None:
        return "unknown"
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class Caller:
    """The request context for the access event, and what was dropped to make it fit."""

    context: AuditContext
    request_id_given: str | None = None  # set when the client's X-Request-ID was replaced by a new id

    @property
    def request_id(self) -> bytes:
        """The X-Request-ID answered: the client's when well-formed, else the one caller_for made."""
        return (self.context.request_id or "").encode()


def caller_for(scope: MutableMapping[str, Any], trusted: Sequence[Network], hops: int = 0) -> Caller:
    forwarded: list[str] = []
    user_agent = request_id = None
    for name, value in scope.get("headers") or ():
        if name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
        elif name == b"user-agent":
            user_agent = clip(printable(value.decode("latin-1")), USER_AGENT_MAX)
        elif name == b"x-request-id":
            request_id = value.decode("latin-1")
    client = scope.get("client")
    given = None
    if request_id is not None and not REQUEST_ID.match(request_id):
        given, request_id = request_id, None
    context = AuditContext(
        ip=client_address(client[0] if client else None, ",".join(forwarded), trusted, hops),
        user_agent=user_agent or None,
        request_id=request_id or new_event_id(),
    )
    return Caller(context, given)
