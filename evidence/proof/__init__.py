"""Inclusion proofs: one event, shown to an auditor without the rest of the trail.

A proof holds the record as it was hashed, the hash it links to (prev_hash),
an RFC 6962 inclusion path from the record's hash to the Merkle root that the
sink's signed digest lists for the record's object, and that whole digest,
whose head is the stream's signed checkpoint for the chain. Checking it needs
the public keys only:

- the digest's signature and its head's signature verify with a given key;
- the digest names the proof's chain and lists the object, with a Merkle
  root, a sequence range holding the record, and a head at or after its end;
- the record hash SHA-256(0x00 || prev_hash || SHA-256(hashed_bytes(record)))
  is the leaf hash (RFC 6962's, of the leaf prev_hash || content digest), and
  the path from it at index seq - first in a tree of last - first + 1 leaves
  leads to the listed root. The path binds the leaf's index but not always the tree's size
  (index 0 of 3 leaves and of 4 walk the same way), so both come from the
  signed range, never from the proof alone.

prev_hash needs no check of its own: a changed record would need a prev_hash
giving the same record hash, a SHA-256 second preimage. The record's fields
must have their columns' types, the required ones be present, and before,
after and metadata each be one JSON object's canonical text: those three go
into the hashed bytes verbatim, so text that is not one object could hide
fields moved into it (`{"n":4},"outcome":"success"` as metadata, outcome
removed) under the very same hash.
Building a proof recomputes the object's record hashes from its rows (the
stored per-row hash is not relied on) and refuses to emit a proof whose root
differs from the digest's: that object fails `sealtrail verify` too.

    build       the proof of one event, read from the bucket or a bundle (I/O)
    check       a proof checked with the public keys alone (pure)
"""

from __future__ import annotations

from sealtrail.evidence.proof.build import build_proof, find_event
from sealtrail.evidence.proof.check import FORMAT, ProofCheck, ProofResult, check_proof

__all__ = ["FORMAT", "ProofCheck", "ProofResult", "build_proof", "check_proof", "find_event"]
