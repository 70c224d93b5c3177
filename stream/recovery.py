"""Reading chain heads back from audit.chained, the only state that cannot disagree with the output.

A worker that starts, restarts after kill -9, or takes over partitions in a
rebalance resumes each chain from the last record actually acknowledged on
audit.chained, and skips input at or before that record's source offset. No
local state, table or changelog can then fork a chain or seal an event twice.
"""

from __future__ import annotations

import orjson

from sealtrail.chain import ChainHead, RecentIds, chain_id
from sealtrail.config import Settings
from sealtrail.errors import ConfigError
from sealtrail.kafka import read_to_end


def recover_heads(settings: Settings, partitions: list[int]) -> dict[int, ChainHead]:
    heads = {p: ChainHead(chain_id(p), recent=RecentIds(settings.stream.dedupe_window)) for p in partitions}
    if not partitions:
        return heads
    last: dict[int, dict] = {}
    for records in read_to_end(settings, settings.kafka.topics.chained, partitions):
        for m in records:
            d = orjson.loads(m.value())
            heads[m.partition()].recent.add(d["event_id"])
            last[m.partition()] = d
    for p, d in last.items():
        head = heads[p]
        if d["chain"] != head.chain:
            raise ConfigError(
                "kafka.topics.chained", f"partition {p} holds chain {d['chain']}, expected {head.chain}"
            )
        head.seq, head.hash, head.src_offset = d["seq"], bytes.fromhex(d["hash"]), d["src_offset"]
    return heads
