"""Which record a chain resumes after: the bucket's head against what audit.chained still holds."""

from __future__ import annotations

import pytest

from sealtrail.errors import ChainForkError
from sealtrail.stream.recovery import StoredHead, resume_from


def wire(seq: int, tag: str = "a", prev_tag: str | None = None) -> dict:
    """A wire record at seq whose hash is made from tag; prev links to seq-1 of prev_tag (default: tag)."""
    prev = f"{prev_tag or tag}{seq - 1:063d}"[-64:] if seq > 1 else None
    return {"chain": "p000", "seq": seq, "hash": f"{tag}{seq:063d}"[-64:], "src_offset": 10 + seq, "prev": prev}


def stored(seq: int, tag: str = "a") -> StoredHead:
    return StoredHead(seq, bytes.fromhex(f"{tag}{seq:063d}"[-64:]), 10 + seq, f"data/p000-{seq}.parquet")


def test_a_new_chain_resumes_from_nothing() -> None:
    assert resume_from("p000", None, []) == (None, [])


def test_without_a_bucket_head_the_topic_decides() -> None:
    assert resume_from("p000", None, [wire(1), wire(2)])[0]["seq"] == 2


@pytest.mark.parametrize("tail", [[], [wire(1), wire(2)]], ids=["topic-aged-out", "topic-shorter"])
def test_the_bucket_head_wins_when_the_topic_holds_less(tail: list[dict]) -> None:
    """audit.chained re-created or aged out: resuming at seq 0 would restart the chain (the loss this fixes)."""
    start, _ = resume_from("p000", stored(5), tail)
    assert (start["seq"], start["src_offset"]) == (5, 15)


def test_the_topic_wins_when_it_continues_the_bucket() -> None:
    tail = [wire(s) for s in range(3, 9)]
    assert resume_from("p000", stored(5), tail)[0]["seq"] == 8
    assert resume_from("p000", stored(5), tail[3:])[0]["seq"] == 8  # seq 6 links to the stored seq 5


def test_a_different_record_at_the_stored_seq_is_a_fork() -> None:
    with pytest.raises(ChainForkError, match="p000.*seq 5"):
        resume_from("p000", stored(5), [wire(s, tag="b") for s in range(1, 9)])


def test_a_record_beyond_the_bucket_that_does_not_link_is_a_fork() -> None:
    with pytest.raises(ChainForkError, match="seq 6"):
        resume_from("p000", stored(5), [wire(6, tag="c", prev_tag="b"), wire(7, tag="c")])


def test_a_topic_that_skips_past_the_bucket_is_a_fork() -> None:
    with pytest.raises(ChainForkError):
        resume_from("p000", stored(5), [wire(9), wire(10)])


def test_records_of_a_writer_that_lost_the_chain_are_passed_over() -> None:
    """A worker frozen past its session wakes and sends seqs 6..7 built on seq 5, after the new owner's 6..9."""
    tail = [wire(s) for s in range(4, 10)] + [wire(6, tag="z", prev_tag="a"), wire(7, tag="z")]
    start, linked = resume_from("p000", stored(5), tail)
    assert start["hash"] == wire(9)["hash"]
    assert [d["seq"] for d in linked] == [6, 7, 8, 9]


def test_the_zombie_landing_first_wins_and_the_later_writer_is_passed_over() -> None:
    tail = [wire(6, tag="z", prev_tag="a"), wire(7, tag="z"), wire(6, tag="b", prev_tag="a"), wire(7, tag="b"),
            wire(8, tag="b")]
    start, linked = resume_from("p000", stored(5), tail)
    assert [(d["seq"], d["hash"]) for d in linked] == [(6, wire(6, tag="z")["hash"]), (7, wire(7, tag="z")["hash"])]


def test_without_a_bucket_the_chain_is_followed_from_the_topic_start() -> None:
    tail = [wire(1), wire(2), wire(2, tag="z"), wire(3)]
    start, linked = resume_from("p000", None, tail)
    assert start["seq"] == 3 and len(linked) == 3
