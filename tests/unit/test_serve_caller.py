"""serve's caller context (evidence/api/caller.py): what a client can put into actor_ip, user_agent, request_id."""

from __future__ import annotations

import pytest

from sealtrail.evidence.api.caller import caller_for, client_address, limit_key, parse_address, printable
from sealtrail.producers.middleware.proxies import trusted_networks

PROXY = trusted_networks(["10.0.0.1"])
BROAD = trusted_networks(["10.0.0.0/8"])


@pytest.mark.parametrize("hop, want", [
    ("fe80::1%a b<script>", "fe80::1"),  # review L5: the scope id's text went into actor_ip
    ("fe80::1%" + "x" * 80, "fe80::1"),  # review M1 (b): 88 characters broke the event (Actor.ip max 64)
    ("[fe80::1%eth0]:443", "fe80::1"),
    ("198.51.100.7:8080", "198.51.100.7"),
    ("::ffff:198.51.100.7", "198.51.100.7"),
    ("1" * 500, None),
    ("not an address", None),
    ("", None),
])
def test_addresses_are_parsed_without_scope_ids(hop: str, want: str | None) -> None:
    parsed = parse_address(hop)
    assert (str(parsed) if parsed is not None else None) == want


def test_x_forwarded_for_is_believed_only_from_trusted_peers() -> None:
    assert client_address("203.0.113.5", "6.6.6.6", PROXY) == "203.0.113.5"  # no proxy: ignored
    assert client_address("10.0.0.1", "6.6.6.6, 198.51.100.7", PROXY) == "198.51.100.7"
    assert client_address("10.0.0.1", "fe80::1%zz, garbage", PROXY) == "10.0.0.1"  # garbage: the proxy itself


def test_a_client_inside_a_broad_trusted_range_is_caught_by_hop_counting() -> None:
    # review L5: "6.6.6.6, 10.0.0.50" through the proxy 10.0.0.1, with 10.0.0.0/8 trusted
    assert client_address("10.0.0.1", "6.6.6.6, 10.0.0.50", BROAD) == "6.6.6.6"  # right to left: spoofed
    assert client_address("10.0.0.1", "6.6.6.6, 10.0.0.50", BROAD, hops=1) == "10.0.0.50"
    assert client_address("10.0.0.1", "6.6.6.6, 10.0.0.50, 10.0.0.2", BROAD, hops=2) == "10.0.0.50"
    assert client_address("10.0.0.1", "10.0.0.50", BROAD, hops=2) == "10.0.0.1"  # fewer hops than proxies


def test_rate_limits_count_an_ipv6_64_as_one_address() -> None:
    assert limit_key("2001:db8::1") == limit_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert limit_key("203.0.113.9") == "203.0.113.9" and limit_key(None) == "unknown"


def test_user_agent_and_request_id_are_bounded_and_printable() -> None:
    scope = {"client": ("203.0.113.9", 1), "headers": [
        (b"user-agent", b"curl\x1b[2K\r" + b"u" * 5000), (b"x-request-id", b"r\x1b[8m-1")]}
    caller = caller_for(scope, ())
    assert caller.context.user_agent is not None and len(caller.context.user_agent) == 1024
    assert caller.context.user_agent.startswith("curl\\x1b[2K\\x0d")
    assert caller.context.request_id != "r\x1b[8m-1" and caller.request_id_given == "r\x1b[8m-1"
    kept = caller_for({"client": None, "headers": [(b"x-request-id", b"ci-run.42:step@a-b")]}, ())
    assert kept.context.request_id == "ci-run.42:step@a-b" and kept.request_id_given is None
    assert kept.context.ip is None
    assert printable("a\u202eb\u2028c\x7f") == "a\\u202eb\\u2028c\\x7f"
