"""One object's rows checked on their own: the pure, hot half of verify, and all a worker process runs.

Given an object's Parquet bytes, check_body reports what its rows say
without looking at any other object: row numbering, each row's row_check,
the chain links up to every signed head, the heads' signatures, and the
object's Merkle root. checks/chain.py (ChainWalk) stitches these results in
sequence order, and evidence/walk.py does the I/O. This module imports no boto3
and no settings, so the worker processes it runs in start quickly.

The hot loop is sealtrail.contents.row_mismatches: per row, the canonical content, one SHA-256
of it (its first four bytes are the row_check, the whole digest goes into the
link), the chain link, and one Merkle node (record hashes are the tree's leaf
hashes, sealtrail.record.chain_hash). Contents are built column-wise with
Arrow (sealtrail.contents: string columns read as dictionaries,
each distinct value formatted once, a chunk of rows joined per call, never a
Python value per cell); a chunk where a string needs JSON escaping or the
schema is not the sink's goes through a dict path that builds hashed_bytes'
document in its sorted key order, and every chunk's first row is checked
against hashed_bytes itself, falling back to the reference if they ever
disagree; tests/unit/test_fast_paths.py compares the paths with hypothesis.
Row checks are compared a chunk at a time (one bytes comparison when all
match) and the chain is linked in a tight loop between signed heads.

The JSON columns (before, after, metadata) go into the hashed bytes as text,
verbatim, so the hash alone cannot tell `{"a":1}` in metadata with a request
id beside it from metadata text that swallowed the request id
(`{"a":1},"request_id":"r"`): the same bytes. json_findings names every cell
that is not one JSON object in canonical form, which no stream wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from sealtrail import merkle
from sealtrail.contents import Columns, TableColumns, read_object, row_mismatches
from sealtrail.encoding import canonical_text
from sealtrail.errors import InvalidEventError, KeyNotFoundError
from sealtrail.evidence.findings import Finding, FindingKind
from sealtrail.layout import DataObject
from sealtrail.objects import (
    RECORD_FORMAT_V2,
    SCHEMA,
    SCHEMAS,
    foreign_format,
    format_of,
    prev_hash_of,
    schema_of_format,
    upgraded,
)
from sealtrail.record import JSON_COLUMNS, RecordKind
from sealtrail.signing import PublicKeys, head_message

K = FindingKind
ROW_COLUMNS = tuple(SCHEMA.names)


# ---------------------------------------------------------------------------
# Parquet -> the column lists the checks read


def schema_problem(schema: pa.Schema) -> str | None:
    """Why a table's schema is not the sink's for its record format, or None. Column names, order, types
    and nullability."""
    got = [(f.name, f.type, f.nullable) for f in schema]
    want = [(f.name, f.type, f.nullable) for f in schema_of_format(schema)]
    if got == want:
        return None
    names, want_names = [g[0] for g in got], [w[0] for w in want]
    extra = [n for n in names if n not in want_names]
    missing = [n for n in want_names if n not in names]
    if extra or missing:
        return f"columns differ from the sink's schema (extra {extra}, missing {missing})"
    if names != want_names:
        return "columns are in a different order than the sink's schema"
    changed = [f"{g[0]}: {g[1]}{'' if g[2] else ' not null'}" for g, w in zip(got, want, strict=True) if g != w]
    return f"column types differ from the sink's schema ({', '.join(changed)})"


# ---------------------------------------------------------------------------
# Pure checks


class ObjectCheck(NamedTuple):
    findings: list[Finding]
    last_hash: bytes | None
    last_seq: int
    signed_count: int
    last_row_signed: bool
    hashes: list[bytes | None]


def object_finding(kind: FindingKind, obj: DataObject | None, chain: str, seq: int | None, detail: str,
             version: str | None = None) -> Finding:
    return Finding(kind, obj.key if obj else None, version, chain, seq, detail)


def _order_problem(seqs: Sequence[int], first: int, last: int) -> tuple[FindingKind, int, str] | None:
    """How the row numbering departs from first..last, naming the first offending seq."""
    want = last - first + 1
    if len(seqs) == want and list(seqs) == list(range(first, last + 1)):
        return None
    i = next((i for i, s in enumerate(seqs) if s != first + i), len(seqs))
    expected = first + i
    if len(seqs) > want:
        claimed = seqs[i] if i < len(seqs) else seqs[-1]
        where = f"where seq {expected} belongs" if expected <= last else f"after seq {last}"
        return K.ROW_INSERTED, claimed, f"{len(seqs) - want} extra row(s): a row claiming seq {claimed} sits {where}"
    if len(seqs) < want:
        return K.ROW_REMOVED, expected, f"{want - len(seqs)} row(s) missing, the first is seq {expected}"
    if sorted(seqs) == list(range(first, last + 1)):
        return K.ROWS_REORDERED, expected, f"rows out of order: seq {seqs[i]} stands where seq {expected} belongs"
    return K.CELL_CHANGED, expected, f"seq column changed: the row where seq {expected} belongs says {seqs[i]}"


def json_text_problem(value: Any, strict: bool = True) -> str | None:
    """Why a before/after/metadata value is not the text of one canonical JSON object, or None.

    The stream stores each as its RFC 8785 text (sealtrail.flatten.flatten), and a JSON object's text
    ends where the object does, so text that is one object cannot have swallowed a column hashed after
    it. strict: re-canonicalise (sealtrail.encoding.canonical_text) and compare; not strict (verify, on
    every row), orjson's sorted form is accepted too (the same bytes inside canonical_text's fast domain)
    before falling back to canonical_text.
    """
    if not isinstance(value, str):
        return f"is {type(value).__name__!s}, not JSON text"
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return "is not the text of one JSON value: fields of other columns may have been moved into it under the same hash"
    if type(parsed) is not dict:
        return f"is a JSON {type(parsed).__name__}, not an object"
    if not strict and _sorted_text(parsed) == value.encode():
        return None
    try:
        canonical = canonical_text(parsed)
    except InvalidEventError as e:
        return f"cannot be canonicalised: {e}"
    return None if canonical == value else "is not in its canonical form (RFC 8785), which the stream writes"


def _sorted_text(value: dict) -> bytes | None:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # deeper than orjson writes: canonical_text decides
        return None


def _json_problems(columns: Columns, name: str) -> list[tuple[int, str]]:
    """(row, problem) for every cell of a JSON column that json_text_problem rejects; distinct values once."""
    if isinstance(columns, TableColumns):
        found: list[tuple[int, str]] = []
        offset = 0
        for chunk in columns.table.column(name).chunks:
            coded = pa.types.is_dictionary(chunk.type)
            values = (chunk.dictionary if coded else chunk).to_pylist()
            bad = {i: why for i, v in enumerate(values) if v is not None
                   and (why := json_text_problem(v, strict=False)) is not None}
            if bad:
                rows = chunk.indices.to_pylist() if coded else range(len(values))
                found += [(offset + r, bad[v]) for r, v in enumerate(rows) if v in bad]
            offset += len(chunk)
        return found
    return [(i, why) for i, v in enumerate(columns[name]) if v is not None
            and (why := json_text_problem(v, strict=False)) is not None]


def json_findings(chain: str, obj: DataObject, columns: Columns) -> list[Finding]:
    """One CELL_CHANGED per run of consecutive rows whose JSON column is not one canonical JSON object."""
    seqs = columns["seq"]
    present = columns.table.column_names if isinstance(columns, TableColumns) else columns
    findings: list[Finding] = []
    for name in sorted(JSON_COLUMNS):
        if name not in present:
            continue
        problems = _json_problems(columns, name)
        start = 0
        for k in range(1, len(problems) + 1):
            if k < len(problems) and problems[k][0] == problems[k - 1][0] + 1 and problems[k][1] == problems[start][1]:
                continue
            lo, hi = seqs[problems[start][0]], seqs[problems[k - 1][0]]
            span = f"seq {lo}" if lo == hi else f"seqs {lo}..{hi}"
            findings.append(object_finding(K.CELL_CHANGED, obj, chain, lo, f"{span}: {name} {problems[start][1]}"))
            start = k
    return findings


def _hash_findings(chain: str, obj: DataObject, seqs: Sequence[int], bad: list[tuple[int, str]]) -> list[Finding]:
    """One CELL_CHANGED per run of consecutive bad rows with the same cause."""
    findings: list[Finding] = []
    run: list[tuple[int, str]] = []

    def close() -> None:
        if not run:
            return
        lo, hi, why = seqs[run[0][0]], seqs[run[-1][0]], run[0][1]
        span = f"seq {lo}" if lo == hi else f"seqs {lo}..{hi}"
        if why == "hash":
            detail = (f"the records before {span} do not hash to its stored hash: that hash, the object's "
                      "start hash (prev_hash), or a row together with its row_check was altered")
        else:
            detail = f"{span}: content does not match its row_check (a cell was changed)"
        findings.append(object_finding(K.CELL_CHANGED, obj, chain, lo, detail))

    for i, why in bad:
        if run and (i != run[-1][0] + 1 or why != run[-1][1]):
            close()
            run = []
        run.append((i, why))
    close()
    return findings


def _signature_findings(chain: str, obj: DataObject, columns: Columns, keys: PublicKeys,
                        hashes: list[bytes | None]) -> tuple[list[Finding], int, set[int]]:
    """Check every row that carries a key id or a signature; returns findings, valid count, signed rows.

    A head's signature is checked over its stored hash, or over the recomputed
    one if the hash cell is empty (a signed head without its hash).
    """
    findings: list[Finding] = []
    signatures, key_ids = columns["signature"], columns["key_id"]
    seqs, sealed_at, stored = columns["seq"], columns["sealed_at"], columns["hash"]
    if isinstance(columns, TableColumns):
        rows = columns.sealed_rows()
    else:
        rows = [i for i, (s, k) in enumerate(zip(signatures, key_ids, strict=True)) if s is not None or k is not None]
    valid = 0
    carried: set[int] = set()
    for i in rows:
        sig, kid, seq = signatures[i], key_ids[i], seqs[i]
        if sig is None:
            detail = f"seq {seq} names key {kid} but has no signature"
            findings.append(object_finding(K.BAD_SIGNATURE, obj, chain, seq, detail))
            continue
        carried.add(i)
        if kid is None:
            findings.append(object_finding(K.BAD_SIGNATURE, obj, chain, seq, f"seq {seq} has a signature but no key id"))
            continue
        if kid not in keys:
            findings.append(object_finding(K.UNKNOWN_KEY, obj, chain, seq, f"seq {seq} is signed with unknown key {kid}"))
            continue
        head_hash = stored[i] if stored[i] is not None else hashes[i]
        if head_hash is None:
            findings.append(object_finding(K.BAD_SIGNATURE, obj, chain, seq,
                                     f"seq {seq} is signed but its hash is neither stored nor computable"))
            continue
        try:
            good = keys.verify(kid, sig, head_message(chain, seq, sealed_at[i], head_hash))
        except KeyNotFoundError:
            good = False
        if good:
            valid += 1
        else:
            findings.append(object_finding(K.BAD_SIGNATURE, obj, chain, seq,
                                     f"the head signature of seq {seq} does not verify with key {kid}"))
    return findings, valid, carried


def partition_of(chain: str) -> int | str:
    """The audit.events partition a chain seals (chain pNNN = partition NNN)."""
    digits = chain[1:]
    return int(digits) if chain[:1] == "p" and digits.isdigit() else chain


def offset_finding(chain: str, key: str | None, expected: int, offset: int, prev_seq: int, seq: int,
                   previous: int | None = None, between: str = "") -> Finding:
    """INPUT_GAP where the row at seq has input offset `offset` and the one before it (at prev_seq) leaves
    `expected` next: offsets expected..offset-1 are in no row, or offset went back (previous: the highest
    offset before it)."""
    part = partition_of(chain)
    if offset >= expected:
        lo, hi = expected, offset - 1
        what = f"input offset {lo} of partition {part} is" if lo == hi else \
            f"input offsets {lo}..{hi} of partition {part} are"
        detail = f"{what} not in the trail (between seq {prev_seq} and seq {seq}{between})"
    else:
        detail = f"input offset {offset} of partition {part} appears again at seq {seq}"
        if previous is not None and offset != previous:
            detail += f" (after input offset {previous} at or before seq {prev_seq}: the offsets go backwards)"
    return Finding(K.INPUT_GAP, key, None, chain, seq, detail)


def input_findings(chain: str, obj: DataObject, seqs: Sequence[int], offsets: Sequence[int | None]) -> list[Finding]:
    """Every place where consecutive rows' src_offset do not rise by exactly 1 (one row per input offset).

    One list comparison when all are contiguous; otherwise a loop against the highest offset so far, so a
    row that goes back is named once and the rows after it are not all blamed."""
    n = len(offsets)
    if n < 2:
        return []
    first = offsets[0]
    if first is not None and offsets[-1] == first + n - 1 and list(offsets) == list(range(first, first + n)):
        return []
    findings: list[Finding] = []
    high: int | None = None
    for i in range(n):
        offset = offsets[i]
        if offset is None:  # only in an object whose schema is not the sink's (reported as such)
            continue
        if high is not None and offset != high + 1:
            findings.append(offset_finding(chain, obj.key, high + 1, offset, seqs[i - 1], seqs[i], high))
        if high is None or offset > high:
            high = offset
    return findings


def check_object_rows(
    chain: str,
    obj: DataObject,
    columns: Columns,
    start_hash: bytes | None,
    keys: PublicKeys,
    inputs: bool = True,
) -> ObjectCheck:
    """Check one object's rows: numbering, row checks, hash links to the signed heads, head signatures.

    start_hash is the hash the first row links to (the object's
    ``sealtrail.prev_hash`` metadata; None when unknown). Returns the
    findings, the hash and seq of the last row, how many head signatures
    verified, whether the last row carries a signature, and every row's hash.
    inputs: check that src_offset rises by one per row (record format v3 and
    later account for every input offset; v2 dropped rejected and repeated
    inputs, so its offsets may skip).
    """
    seqs = columns["seq"]
    n = len(seqs)
    findings: list[Finding] = []
    order = _order_problem(seqs, obj.first, obj.last)
    if order is not None:
        kind, seq, detail = order
        findings.append(object_finding(kind, obj, chain, seq, detail))
    if n and obj.dt != str(columns["sealed_at"][0])[:10]:
        findings.append(object_finding(K.CELL_CHANGED, obj, chain, seqs[0],
                                 f"the object's dt={obj.dt} partition differs from the sealing date of its "
                                 f"first record ({str(columns['sealed_at'][0])[:10]})"))
    def head_ok(i: int, head_hash: bytes) -> bool:
        sig, kid = columns["signature"][i], columns["key_id"][i]
        if sig is None or kid is None or kid not in keys:
            return False
        return keys.verify(kid, sig, head_message(chain, seqs[i], columns["sealed_at"][i], head_hash))

    bad, hashes = row_mismatches(chain, columns, start_hash, head_ok)
    if order is None:  # with broken numbering, row findings would only echo the finding above
        findings.extend(_hash_findings(chain, obj, seqs, bad))
        findings.extend(json_findings(chain, obj, columns))
        if inputs:
            findings.extend(input_findings(chain, obj, seqs, columns["src_offset"]))
    sig_findings, valid, carried = _signature_findings(chain, obj, columns, keys, hashes)
    findings.extend(sig_findings)
    if n == 0:
        return ObjectCheck(findings, start_hash, obj.first - 1, valid, False, [])
    return ObjectCheck(findings, hashes[-1], seqs[-1], valid, (n - 1) in carried, hashes)


class ObjectRows(NamedTuple):
    """What one object's rows say on their own, without its predecessor.

    Objects are checked independently (in parallel processes when it pays)
    and stitched together in sequence order by ChainWalk, which compares each
    object's start hash with the previous object's last hash.
    """

    check: ObjectCheck
    records: int  # rows of the object (not "count": that is tuple's own method)
    first_seq: int | None
    start_hash: bytes | None
    last_signed_seq: int | None
    merkle_root: bytes | None = None
    tenant_events: int = 0  # rows of the tenant asked about (verify --tenant)
    first_src_offset: int | None = None  # the first row's input offset
    last_src_offset: int | None = None  # the highest input offset of its rows (the last, when contiguous)
    rejected: int = 0  # accounting rows of kind rejected
    duplicates: int = 0  # accounting rows of kind duplicate
    inputs: bool = True  # its rows account for every input offset (record format v3 and later)
    # (seq, key id, sealed_at) of its first signed head and of each head signed with another key than the
    # one before it: the chain's key history (sealtrail.evidence.key_history), a few tuples per object
    signers: tuple[tuple[int, str, str], ...] = ()


def signers_of(columns: Columns) -> tuple[tuple[int, str, str], ...]:
    key_ids, seqs, sealed_at = columns["key_id"], columns["seq"], columns["sealed_at"]
    if isinstance(columns, TableColumns):
        rows: Iterable[int] = columns.sealed_rows()
    else:
        rows = (i for i, k in enumerate(key_ids) if k is not None)
    found: list[tuple[int, str, str]] = []
    for i in rows:
        kid = key_ids[i]
        if kid is not None and (not found or found[-1][1] != kid):
            found.append((seqs[i], str(kid), str(sealed_at[i])))
    return tuple(found)


def check_object_alone(chain: str, obj: DataObject, columns: Columns, keys: PublicKeys,
                       start_hash: bytes | None, inputs: bool = True) -> ObjectRows:
    check = check_object_rows(chain, obj, columns, start_hash, keys, inputs)
    n = len(columns["seq"])
    if not n:
        return ObjectRows(check, 0, None, start_hash, None, inputs=inputs)
    signatures = columns["signature"]
    last = next((i for i in range(n - 1, -1, -1) if signatures[i] is not None), None)
    offsets = [o for o in columns["src_offset"] if o is not None] if None in columns["src_offset"] \
        else columns["src_offset"]
    kinds = columns["kind"] if "kind" in columns else ()
    return ObjectRows(check, n, columns["seq"][0], start_hash, columns["seq"][last] if last is not None else None,
                      _merkle_root(check.hashes),
                      first_src_offset=offsets[0] if offsets else None,
                      last_src_offset=max(offsets) if offsets else None,
                      rejected=kinds.count(RecordKind.REJECTED.value) if kinds else 0,
                      duplicates=kinds.count(RecordKind.DUPLICATE.value) if kinds else 0,
                      inputs=inputs, signers=signers_of(columns))


def _merkle_root(hashes: list[bytes | None]) -> bytes | None:
    """RFC 6962 root of the object's rows (record hashes are its leaf hashes), what digests list,
    if every hash is known."""
    if not hashes or None in hashes:
        return None
    return merkle.root_of_hashes(hashes)  # type: ignore[arg-type]


class ParsedObject(NamedTuple):
    columns: Columns | None
    start_hash: bytes | None  # what the first row links to, from the metadata
    problem: str | None  # the schema differs from the sink's
    unreadable: str | None
    inputs: bool = True  # record format v3 or later: one row per input offset


def parse_columns(body: bytes) -> ParsedObject:
    """Parquet bytes -> columns as hashed, the start hash, a schema problem, an unreadable reason."""
    try:
        table, schema = read_object(body)
        foreign = foreign_format(schema)
        if foreign is not None:
            return ParsedObject(None, None, None, f"written in record format {foreign!r}; this verifier "
                                                  f"knows {sorted(SCHEMAS)} only, so its rows cannot be checked")
        problem = schema_problem(schema)
        table = upgraded(table)
        missing = [name for name in ROW_COLUMNS if name not in table.column_names]
        if missing:
            return ParsedObject(None, None, problem, f"cannot check rows without columns {missing}")
        return ParsedObject(TableColumns(table, problem is None), prev_hash_of(schema), problem, None,
                            format_of(schema) != RECORD_FORMAT_V2 and format_of(schema) is not None)
    except (pa.ArrowException, OSError, ValueError) as e:
        return ParsedObject(None, None, None, f"not readable as Parquet: {e}")


@lru_cache(maxsize=4)
def public_keys(pems: tuple[bytes, ...]) -> PublicKeys:
    """PublicKeys from PEMs, once per process (the keys themselves cannot be pickled to a worker)."""
    keys = PublicKeys()
    for pem in pems:
        keys.add_pem(pem)
    return keys


def check_body(chain: str, obj: DataObject, body: bytes, pems: tuple[bytes, ...], tenant: str | None = None
               ) -> tuple[ObjectRows | None, str | None, str | None]:
    """One object's bytes -> (its rows checked alone, schema problem, unreadable reason).

    Top-level and free of I/O so a process pool can run it.
    """
    columns, start_hash, problem, unreadable, inputs = parse_columns(body)
    if columns is None:
        return None, problem, unreadable
    try:
        rows = check_object_alone(chain, obj, columns, public_keys(pems), start_hash, inputs)
        rows = rows._replace(check=rows.check._replace(hashes=[]))  # used up in the Merkle root; not sent back
        if tenant is not None:
            rows = rows._replace(tenant_events=sum(1 for t in columns["tenant"] if t == tenant))
        return rows, problem, None
    except (ValueError, TypeError, orjson.JSONEncodeError) as e:
        return None, problem, f"cannot check rows: {e}"


