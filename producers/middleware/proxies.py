"""Client addresses behind trusted proxies, and request ids: the parsing both middlewares share.

See the package docstring for the rules (X-Forwarded-For read right to left,
only from trusted proxies; IPv6 scope ids dropped; incoming request ids kept
only when short and plain).
"""


from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from sealtrail.errors import ConfigError
from sealtrail.printable import printable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
GIVEN_MAX = 256  # of the escaped original request id kept in metadata
ADDRESS_TEXT_MAX = 45  # the longest IPv6 text (with an IPv4 tail); anything longer is not an address


def request_id_from(given: str | None, new_id: str) -> tuple[str, str | None]:
    """The request id to record and, when the given one was refused, its escaped text (else None)."""
    if given is None or given == "":
        return new_id, None
    if REQUEST_ID.fullmatch(given):
        return given, None
    shown = printable(given)
    return new_id, shown if len(shown) <= GIVEN_MAX else shown[: GIVEN_MAX - 1] + "…"


def trusted_networks(proxies: Iterable[str]) -> tuple[Network, ...]:
    """Parse addresses or CIDRs (``10.0.0.0/8``, ``127.0.0.1``); a bad entry is a ConfigError naming it."""
    if isinstance(proxies, str):
        raise ConfigError("trusted_proxies", "expected a list of addresses or CIDRs, not one string")
    nets = []
    for proxy in proxies:
        try:
            nets.append(ipaddress.ip_network(proxy.strip(), strict=False))
        except (ValueError, AttributeError) as e:
            raise ConfigError("trusted_proxies", f"not an address or CIDR: {proxy!r}") from e
    return tuple(nets)


def parse_address(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a peer or an X-Forwarded-For hop (``[v6]:port``, ``v4:port`` and scope ids allowed),
    else None; the middlewares and `sealtrail serve` read callers' addresses alike."""
    if not address:
        return None
    text = address.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 198.51.100.7:443
        text = text.split(":")[0]
    text = text.partition("%")[0]  # fe80::1%eth0: the scope id is dropped, whatever it holds
    if not text or len(text) > ADDRESS_TEXT_MAX:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: tuple[Network, ...]) -> bool:
    return any(ip in net for net in nets)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    """The client's address: the peer, or (behind trusted proxies) the first untrusted hop of X-Forwarded-For."""
    current = parse_address(peer)
    if current is None:
        return None
    if not forwarded_for or not _trusted(current, trusted):
        return str(current)
    for hop in reversed([h for h in forwarded_for.split(",") if h.strip()]):
        ip = parse_address(hop)
        if ip is None:
            break  # garbage in the header: believe only what trusted proxies vouched for so far
        current = ip
        if not _trusted(ip, trusted):
            break
    return str(current)
