"""query: DuckDB over the trail's Parquet in a bucket-shaped folder (hive layout), filters bound as parameters."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from sealtrail.chain import Accepted, ChainHead, seal_batch
from sealtrail.config import S3Settings, Settings
from sealtrail.errors import ConfigError
from sealtrail.evidence.bundle import DirectoryStore
from sealtrail.evidence.query import open_events, query_events, render, run_sql
from sealtrail.layout import data_key, public_key_key
from sealtrail.objects import to_parquet
from tests.support.builders import RETENTION_DAYS, columns_of
from tests.support.signers import new_signer
from tests.support.stores import put_file

PREFIX = "trail/"
SETTINGS = Settings(s3=S3Settings(prefix=PREFIX))
ACTORS = ("alice", "bob", "carol")
ACTIONS = ("auth.login", "data.update", "data.read", "auth.logout")
N = 40  # events per chain


def event(chain_no: int, i: int) -> dict[str, Any]:
    minute = chain_no * N + i  # distinct times: 2024-05-01T12:00 + minute
    ev: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=(chain_no << 32) | i, version=4)),
        "occurred_at": f"2024-05-01T{12 + minute // 60:02d}:{minute % 60:02d}:00.250000Z",
        "category": "auth" if i % 4 in (0, 3) else "change",
        "action": ACTIONS[i % 4],
        "actor": {"id": ACTORS[i % 3]},
        "tenant": "acme" if i % 2 else "globex",
        "source": "web",
        "metadata": {"i": i},
    }
    if i % 4 in (1, 2):
        ev["resource"] = {"type": "invoice", "id": f"inv-{i % 5}"}
    return ev


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two chains, two objects each, in the bucket's layout; plus a lock sidecar and a stray file to ignore."""
    root = tmp_path_factory.mktemp("bundle")
    signer = new_signer()
    heads = {0: ChainHead("p000"), 1: ChainHead("p001")}
    for b, (lo, hi) in enumerate(((0, 25), (25, N))):
        batch = []
        for p in (0, 1):
            for i in range(lo, hi):
                batch.append(Accepted(p, i, columns_of(event(p, i))))
        prevs = {h.chain: h.hash for h in heads.values()}
        sealed = seal_batch(heads, batch, signer, f"2024-05-0{1 + b}T13:00:00.000000Z").sealed
        for chain in ("p000", "p001"):
            records = [r for r in sealed if r.chain == chain]
            key = data_key(PREFIX, records[0].sealed_at[:10], chain, records[0].seq, records[-1].seq)
            put_file(root, key, to_parquet(records, prevs[chain]))
    put_file(root, public_key_key(PREFIX, signer.key_id), signer.public_pem)
    (root / PREFIX / "data" / "README.txt").write_text("not parquet")
    return root


@pytest.fixture
def con(bundle: Path):  # type: ignore[no-untyped-def]
    connection = open_events(SETTINGS, DirectoryStore(bundle))
    yield connection
    connection.close()


def all_events() -> list[dict[str, Any]]:
    return [event(p, i) for p in (0, 1) for i in range(N)]


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {r["event_id"] for r in rows}


def test_everything_is_there_with_partition_columns(con) -> None:  # type: ignore[no-untyped-def]
    rows = query_events(con, limit=1000)
    assert len(rows) == 2 * N
    assert {r["chain"] for r in rows} == {"p000", "p001"}
    assert {r["dt"] for r in rows} == {"2024-05-01", "2024-05-02"}
    times = [r["occurred_at"] for r in rows]
    assert times == sorted(times)


def test_filter_by_actor(con) -> None:  # type: ignore[no-untyped-def]
    rows = query_events(con, actor="bob", limit=1000)
    assert ids(rows) == {e["event_id"] for e in all_events() if e["actor"]["id"] == "bob"}


def test_filter_by_action_and_tenant(con) -> None:  # type: ignore[no-untyped-def]
    rows = query_events(con, action="data.update", tenant="acme", limit=1000)
    want = {e["event_id"] for e in all_events() if e["action"] == "data.update" and e["tenant"] == "acme"}
    assert want and ids(rows) == want


def test_filter_by_resource_and_category(con) -> None:  # type: ignore[no-untyped-def]
    rows = query_events(con, resource_type="invoice", resource_id="inv-2", category="change", limit=1000)
    want = {e["event_id"] for e in all_events() if e.get("resource", {}).get("id") == "inv-2"}
    assert want and ids(rows) == want


def test_filter_by_time_window(con) -> None:  # type: ignore[no-untyped-def]
    since = datetime(2024, 5, 1, 12, 10, tzinfo=timezone.utc)
    rows = query_events(con, since=since, until="2024-05-01T12:20:00Z", limit=1000)
    want = {e["event_id"] for e in all_events() if "12:10:" <= e["occurred_at"][11:17] < "12:20:"}
    assert len(want) == 10 and ids(rows) == want


def test_naive_time_is_utc(con) -> None:  # type: ignore[no-untyped-def]
    assert len(query_events(con, since="2024-05-01T13:00:00", limit=1000)) == 2 * N - 60


def test_pagination_covers_everything_once(con) -> None:  # type: ignore[no-untyped-def]
    pages = [query_events(con, actor="alice", limit=7, offset=o) for o in range(0, 100, 7)]
    flat = [r["event_id"] for page in pages for r in page]
    assert len(flat) == len(set(flat)) == len([e for e in all_events() if e["actor"]["id"] == "alice"])
    assert [len(p) for p in pages[:3]] == [7, 7, 7]


def test_descending_order(con) -> None:  # type: ignore[no-untyped-def]
    rows = query_events(con, order="-seq", chain="p001", limit=3)
    assert [r["seq"] for r in rows] == [N, N - 1, N - 2]


def test_user_values_are_never_sql(con) -> None:  # type: ignore[no-untyped-def]
    assert query_events(con, actor="alice' OR '1'='1") == []
    with pytest.raises(ConfigError):
        query_events(con, order="seq; DROP VIEW events")
    assert len(query_events(con, limit=1000)) == 2 * N


def test_run_sql(con) -> None:  # type: ignore[no-untyped-def]
    rows = run_sql(con, "SELECT chain, count(*) AS n FROM events GROUP BY chain ORDER BY chain")
    assert rows == [{"chain": "p000", "n": N}, {"chain": "p001", "n": N}]
    with pytest.raises(ConfigError):
        run_sql(con, "SELECT nope FROM events")


def test_render_json(con) -> None:  # type: ignore[no-untyped-def]
    rows = query_events(con, actor="carol", limit=2)
    doc = json.loads(render(rows, "json"))
    assert isinstance(doc, list) and len(doc) == 2
    first = doc[0]
    assert first["occurred_at"] == "2024-05-01T12:02:00.250000Z"
    assert first["actor_id"] == "carol"
    signed = [r for r in json.loads(render(query_events(con, limit=1000), "json")) if r["signature"]]
    assert signed and all(len(r["hash"]) == 64 and bytes.fromhex(r["hash"]) for r in signed)  # binary as hex


def test_render_csv(con) -> None:  # type: ignore[no-untyped-def]
    rows = query_events(con, action="auth.login", limit=1000)
    parsed = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert len(parsed) == len(rows) == 20
    assert parsed[0]["action"] == "auth.login"
    assert parsed[0]["sealed_at"].endswith("Z")
    assert parsed[0]["resource_id"] == ""


def test_render_table(con) -> None:  # type: ignore[no-untyped-def]
    rows = query_events(con, actor="bob", limit=3)
    text = render(rows, "table")
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["seq", "sealed_at", "src_offset"]
    assert set(lines[1]) <= {"-", " "}
    assert len(lines) == 2 + 3
    assert "bob" in lines[2]
    assert "before" not in lines[0]  # empty in every row shown
    assert render([], "table") == "(no rows)\n"
    with pytest.raises(ConfigError):
        render(rows, "xml")


def test_empty_bucket_gives_no_rows(tmp_path: Path) -> None:
    con = open_events(SETTINGS, DirectoryStore(tmp_path))
    assert query_events(con, actor="alice") == []
    assert run_sql(con, "SELECT count(*) AS n FROM events") == [{"n": 0}]
    assert render([], "json") == "[]"
    assert render([], "csv") == ""


def test_keyset_cursor_walks_everything_once_in_order(con) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    after = None
    while True:
        page = query_events(con, limit=7, after=after)
        if not page:
            break
        seen += [r["event_id"] for r in page]
        last = page[-1]
        after = (last["occurred_at"], last["chain"], last["seq"])
    everything = query_events(con, limit=1000)
    assert seen == [r["event_id"] for r in everything]
    assert len(seen) == 2 * N


def test_keyset_cursor_descending_and_with_filters(con) -> None:  # type: ignore[no-untyped-def]
    top = query_events(con, order="-occurred_at", actor="bob", limit=3)
    last = top[-1]
    rest = query_events(con, order="-occurred_at", actor="bob", limit=1000,
                        after=(last["occurred_at"], last["chain"], last["seq"]))
    whole = query_events(con, order="-occurred_at", actor="bob", limit=1000)
    assert [r["event_id"] for r in top + rest] == [r["event_id"] for r in whole]


def test_keyset_cursor_needs_time_order(con) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        query_events(con, order="seq", after=("2024-05-01T12:00:00Z", "p000", 1))


def test_filter_by_event_id(con) -> None:  # type: ignore[no-untyped-def]
    wanted = str(uuid.UUID(int=(1 << 32) | 7, version=4))
    rows = query_events(con, event_id=wanted)
    assert [(r["event_id"], r["chain"]) for r in rows] == [(wanted, "p001")]


def test_count_by_groups_most_first(con) -> None:  # type: ignore[no-untyped-def]
    from collections import Counter

    from sealtrail.evidence.query import count_events

    rows = count_events(con, ["actor_id"], action="auth.login")
    want = Counter(e["actor"]["id"] for e in all_events() if e["action"] == "auth.login")
    assert {r["actor_id"]: r["events"] for r in rows} == dict(want)
    assert [r["events"] for r in rows] == sorted((r["events"] for r in rows), reverse=True)
    two = count_events(con, ["tenant", "action"], category="auth")
    assert sum(r["events"] for r in two) == sum(1 for e in all_events() if e["category"] == "auth")


def test_count_by_rejects_unknown_columns(con) -> None:  # type: ignore[no-untyped-def]
    from sealtrail.errors import ConfigError
    from sealtrail.evidence.query import count_events

    with pytest.raises(ConfigError):
        count_events(con, ["actor_id; drop table events"])
    with pytest.raises(ConfigError):
        count_events(con, [])


def test_query_command_counts_and_orders(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from sealtrail.cli.main import cli

    monkeypatch.setenv("SEALTRAIL_S3__PREFIX", PREFIX)
    monkeypatch.setenv("SEALTRAIL_RETENTION__DAYS", str(RETENTION_DAYS))
    run = lambda *a: CliRunner().invoke(cli, ["query", "--path", str(bundle), "--format", "json", *a],  # noqa: E731
                                        standalone_mode=False, catch_exceptions=False)
    counted = json.loads(run("--category", "change", "--count-by", "actor_id").stdout)
    assert sum(r["events"] for r in counted) == sum(1 for e in all_events() if e["category"] == "change")
    newest = json.loads(run("--actor", "bob", "--order", "-occurred_at", "--limit", "3").stdout)
    times = [r["occurred_at"] for r in newest]
    assert len(times) == 3 and times == sorted(times, reverse=True)
    assert all(r["actor_id"] == "bob" for r in newest)


# ---------------------------------------------------------------------------
# L9: --sql reads the views and nothing else, unless --unsafe-sql


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd', sep=':', header=false)",
    "SELECT * FROM read_text('/etc/passwd')",
    "COPY (SELECT 'written by --sql' AS x) TO '{dir}/sql-wrote.csv'",
    "ATTACH '{dir}/sql-attached.duckdb' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
])
def test_sql_cannot_reach_files_extensions_or_the_network(con, tmp_path: Path, sql: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as refused:
        run_sql(con, sql.format(dir=tmp_path))
    assert refused.value.setting == "--sql" and "--unsafe-sql" in refused.value.problem
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert run_sql(con, "SELECT count(*) AS n FROM events") == [{"n": 2 * N}]  # the views still work


def test_sql_cannot_unlock_the_connection(con) -> None:  # type: ignore[no-untyped-def]
    for sql in ("SET enable_external_access = true", "RESET lock_configuration", "SET lock_configuration = false"):
        with pytest.raises(ConfigError):
            run_sql(con, sql)
    with pytest.raises(ConfigError):
        run_sql(con, "SELECT * FROM read_csv('/etc/passwd')")


def test_unsafe_sql_is_the_whole_of_duckdb(bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "local.csv").write_text("a,b\n1,x\n")
    con = open_events(SETTINGS, DirectoryStore(bundle), unsafe_sql=True)
    try:
        assert run_sql(con, f"SELECT a, b FROM read_csv('{tmp_path / 'local.csv'}')") == [{"a": 1, "b": "x"}]
        with pytest.raises(ConfigError) as missing:  # a file it cannot read is the SQL's problem, not S3's
            run_sql(con, f"SELECT * FROM read_csv('{tmp_path / 'absent.csv'}')")
        assert missing.value.setting == "--sql"
    finally:
        con.close()


def test_query_command_refuses_a_file_read_and_runs_a_normal_query(bundle: Path, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    from click.testing import CliRunner

    from sealtrail.cli.main import cli

    monkeypatch.setenv("SEALTRAIL_S3__PREFIX", PREFIX)
    monkeypatch.setenv("SEALTRAIL_RETENTION__DAYS", str(RETENTION_DAYS))
    run = lambda *a: CliRunner().invoke(cli, ["query", "--path", str(bundle), "--format", "json", *a],  # noqa: E731
                                        standalone_mode=False)
    ok = run("--sql", "SELECT count(*) AS n FROM events")
    assert ok.exception is None and json.loads(ok.stdout) == [{"n": 2 * N}]
    refused = run("--sql", "SELECT * FROM read_csv('/etc/passwd', sep=':', header=false)")
    assert isinstance(refused.exception, ConfigError) and "root:" not in refused.stdout
    assert isinstance(run("--unsafe-sql").exception, Exception)  # only with --sql


# ---------------------------------------------------------------------------
# M8: no control character of a cell reaches the terminal


ESCAPES = "abc\x1b]0;owned\x07\x1b[8m\r\nproof valid\x9b2J\u202e\u2028"


def _raw_controls(text: str) -> set[str]:
    return {c for c in text if c in "\x1b\x07\r\x9b\u202e\u2028"}


def test_table_and_csv_show_a_cells_controls_as_escapes(con) -> None:  # type: ignore[no-untyped-def]
    rows = run_sql(con, "SELECT chr(27) || ']0;owned' || chr(7) || chr(27) || '[8m' AS request_id, "
                        "'x' AS \"col\x1b[2K\"")
    assert rows[0]["request_id"] == "\x1b]0;owned\x07\x1b[8m"
    table, text = render(rows, "table"), render(rows, "csv")
    for out in (table, text):
        assert _raw_controls(out) == set()
        assert "\\x1b]0;owned\\x07\\x1b[8m" in out and "col\\x1b[2K" in out
    assert json.loads(render(rows, "json")) == rows  # JSON stays exact


def test_a_cell_cannot_print_a_line_of_its_own() -> None:
    rows = [{"actor_id": ESCAPES, "metadata": {"note": ESCAPES}}]
    table = render(rows, "table")
    assert _raw_controls(table) == set() and len(table.splitlines()) == 3
    parsed = list(csv.reader(io.StringIO(render(rows, "csv"))))
    assert len(parsed) == 2 and _raw_controls("".join(parsed[1])) == set()
    assert parsed[1][0] == "abc\\x1b]0;owned\\x07\\x1b[8m\\r\\nproof valid\\x9b2J\\u202e\\u2028"
    assert json.loads(render(rows, "json")) == rows
