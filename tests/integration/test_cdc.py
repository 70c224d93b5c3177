"""PostgreSQL change capture on the embedded PostgreSQL, relayed through the real broker, stream and sink.

Each test gets its own database on the session's server. The relay runs as
a real `sealtrail cdc run` process configured through SEALTRAIL_* variables.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sealtrail.errors import CaptureError
from sealtrail.evidence.walk import verify_store
from sealtrail.kafka import read_to_end
from sealtrail.producers import audit_context
from sealtrail.producers.cdc.install import install
from sealtrail.producers.cdc.relay import Relay
from sealtrail.producers.cdc.session import apply_context

SCHEMA = """
create table users (id bigserial primary key, email text not null, password_hash text, api_token text);
create table orders (tenant text, id int, status text, card text, primary key (tenant, id));
"""


@pytest.fixture
def database(stack, unique_name) -> Iterator[str]:  # type: ignore[no-untyped-def]
    base = stack.settings.database_url
    name = unique_name("cdc").replace("-", "_")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    install(url, ["users", "public.orders"])
    try:
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")


def audit_rows(url: str, where: str = "true") -> list[dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(f"select * from sealtrail.audit_log where {where} order by id").fetchall()


def test_changes_are_captured_with_the_application_context(database: str) -> None:
    with psycopg.connect(database) as conn:
        with conn.transaction(), audit_context(actor_id="alice", ip="198.51.100.7", tenant="acme", request_id="r-1"):
            apply_context(conn)
            conn.execute("insert into users (email, password_hash) values ('a@example.com', 'x')")
            conn.execute("update users set email = 'b@example.com'")
            conn.execute("insert into orders values ('acme', 1, 'new', null)")
            conn.execute("delete from orders")
        conn.execute("insert into users (email) values ('no-context@example.com')")  # next transaction: no app.*
        conn.commit()
        conn.execute("truncate orders")
        conn.commit()
    rows = audit_rows(database, "kind = 'change'")
    assert [(r["operation"], r["table_name"], r["row_key"]) for r in rows] == [
        ("INSERT", "users", "1"), ("UPDATE", "users", "1"), ("INSERT", "orders", "acme,1"),
        ("DELETE", "orders", "acme,1"), ("INSERT", "users", "2"), ("TRUNCATE", "orders", "*"),
    ]
    update = rows[1]
    assert update["before"]["email"] == "a@example.com" and update["after"]["email"] == "b@example.com"
    assert update["changed"] == ["email"]
    assert [(r["app_user_id"], r["app_ip"], r["app_tenant"], r["app_request_id"]) for r in rows[:4]] == [
        ("alice", "198.51.100.7", "acme", "r-1")] * 4
    assert rows[4]["app_user_id"] is None and rows[4]["db_user"] == "postgres"
    assert len({r["txid"] for r in rows[:4]}) == 1


def test_replica_role_does_not_silence_capture(database: str) -> None:
    with psycopg.connect(database) as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute("insert into users (email) values ('replica@example.com')")
        conn.execute("update users set email = 'still-captured@example.com'")
        conn.commit()
    assert [r["operation"] for r in audit_rows(database, "kind = 'change'")] == ["INSERT", "UPDATE"]


def test_ddl_that_could_blind_capture_is_recorded(database: str) -> None:
    before = len(audit_rows(database))
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("alter table users disable trigger sealtrail_capture")
        conn.execute("insert into users (email) values ('unseen@example.com')")  # really not captured ...
        conn.execute("alter table users enable always trigger sealtrail_capture")
        conn.execute("alter table orders enable replica trigger sealtrail_capture")
        conn.execute("alter table users add column nickname text")
        conn.execute("drop trigger sealtrail_capture_truncate on users")
        conn.execute("create or replace function sealtrail.capture() returns trigger language plpgsql "
                     "as $$ begin return null; end $$")
        conn.execute("drop table orders")
    ddl = audit_rows(database, f"kind = 'ddl' and id > {before}")
    queries = [r["detail"]["query"] for r in ddl]
    assert any("disable trigger sealtrail_capture" in q for q in queries)  # ... but the switch-off itself is
    assert any("enable replica trigger" in q for q in queries)
    assert any("add column nickname" in q for q in queries)
    assert ("DROP TRIGGER", "sealtrail_capture_truncate on public.users") in [(r["operation"], r["table_name"]) for r in ddl]
    assert any(r["operation"] == "CREATE FUNCTION" and r["table_name"] == "sealtrail.capture()" for r in ddl)
    assert ("DROP TABLE", "public.orders") in [(r["operation"], r["table_name"]) for r in ddl]

    from sealtrail.producers.cdc.relay import ddl_action

    actions = {ddl_action(r["operation"], r["detail"]["object_type"], r["detail"]["query"]) for r in ddl}
    assert {"security.capture_disabled", "security.capture_trigger_dropped", "security.audited_table_dropped",
            "security.audited_table_altered", "security.capture_changed"} <= actions


def test_audit_table_refuses_update_delete_truncate_for_non_owners(database: str, unique_name) -> None:  # type: ignore[no-untyped-def]
    role = unique_name("app").replace("-", "_")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("insert into users (email) values ('x@example.com')")
        conn.execute(f"create role {role}")
        # even explicit grants do not help: the guard trigger checks ownership
        conn.execute(f"grant usage on schema sealtrail to {role}")
        conn.execute(f"grant select, insert, update, delete, truncate on sealtrail.audit_log to {role}")
        try:
            for statement in ("update sealtrail.audit_log set operation = 'FORGED'",
                              "delete from sealtrail.audit_log",
                              "truncate sealtrail.audit_log"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                    with conn.transaction():
                        conn.execute(f"set local role {role}")
                        conn.execute(statement)
            # a superuser who is not the owner is refused too (the guard is ENABLE ALWAYS)
            conn.execute(f"alter table sealtrail.audit_log owner to {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("delete from sealtrail.audit_log")
        finally:
            conn.execute("alter table sealtrail.audit_log owner to postgres")
            conn.execute("drop owned by " + role)
            conn.execute(f"drop role {role}")
    assert all(r["operation"] != "FORGED" for r in audit_rows(database))


def test_install_errors_name_the_problem(database: str) -> None:
    with pytest.raises(CaptureError, match="'nope' not found"):
        install(database, ["nope"])
    with pytest.raises(CaptureError, match="at least one table"):
        install(database, [])


def test_cli_install_and_status(database: str) -> None:
    import json

    def sealtrail(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sealtrail.cli", *args], capture_output=True, text=True,
                              env={**os.environ, "SEALTRAIL_DATABASE_URL": database}, timeout=60)

    bad = sealtrail("cdc", "install", "--table", "nope")
    assert bad.returncode == 2 and "'nope' not found" in bad.stderr
    ok = sealtrail("cdc", "install", "--table", "users")  # again: idempotent, repairs
    assert ok.returncode == 0, ok.stderr
    status = json.loads(sealtrail("cdc", "status", "--json").stdout)
    users = next(t for t in status["tables"] if t["identity"] == "public.users")
    assert set(users["triggers"].values()) == {"always"}
    assert set(status["event_triggers"].values()) == {"always"}


def relay_process(trail, database: str, log: Path) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    env = {**os.environ, **trail.env, "SEALTRAIL_DATABASE_URL": database,
           "SEALTRAIL_CDC__POLL_INTERVAL_S": "0.1", "SEALTRAIL_CDC__BATCH_SIZE": "50"}
    return subprocess.Popen([sys.executable, "-m", "sealtrail.cli", "cdc", "run"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def relayed_events(trail) -> list[dict]:  # type: ignore[no-untyped-def]
    import orjson

    events: list[dict] = []
    for batch in read_to_end(trail.settings, trail.settings.kafka.topics.events, list(range(trail.partitions))):
        events.extend(orjson.loads(m.value()) for m in batch)
    return events


def relayed_ids(trail) -> set[str]:  # type: ignore[no-untyped-def]
    return {e["event_id"] for e in relayed_events(trail)}


def test_out_of_order_commits_are_all_sealed_exactly_once(trail, database: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Concurrent transactions commit in an order unrelated to their ids; the first (lowest id) commits last."""
    log = tmp_path / "relay.log"
    relay = relay_process(trail, database, log)
    rng = random.Random(7)
    errors: list[BaseException] = []

    long_tx = psycopg.connect(database)
    long_tx.execute("insert into users (email, password_hash) values ('first@example.com', 'hunter2')")  # lowest id
    (lowest,) = long_tx.execute("select max(id) from sealtrail.audit_log where kind = 'change'").fetchone()

    def worker(n: int) -> None:
        try:
            with psycopg.connect(database) as conn:
                for i in range(12):
                    with conn.transaction():
                        for j in range(rng.randrange(1, 4)):
                            conn.execute("insert into orders values (%s, %s, 'new', %s)",
                                         (f"t{n}", i * 10 + j, "4111 1111 1111 1111"))
                        time.sleep(rng.uniform(0, 0.03))  # interleave the commits
                        conn.execute("update orders set status = 'paid' where tenant = %s and id = %s", (f"t{n}", i * 10))
                    if i == 5:  # a rolled-back transaction and a rolled-back savepoint leave nothing behind
                        with pytest.raises(RuntimeError), conn.transaction():
                            conn.execute("insert into users (email) values ('rolled-back@example.com')")
                            raise RuntimeError
                        with conn.transaction():
                            conn.execute("insert into users (email) values ('kept@example.com')")
                            with pytest.raises(RuntimeError), conn.transaction():
                                conn.execute("insert into users (email) values ('savepoint@example.com')")
                                raise RuntimeError
        except BaseException as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while not relayed_ids(trail):  # the kill lands mid-flow: some rows are relayed, more are being committed
        assert relay.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the relay relayed nothing"
        time.sleep(0.05)
    relay.kill()  # kill -9 mid-flow: the durable position and at-least-once resend must cover it
    relay.wait()
    relay = relay_process(trail, database, log)
    for t in threads:
        t.join()
    assert not errors, errors
    committed = {str(r["event_id"]) for r in audit_rows(database)}
    deadline = time.monotonic() + 60
    while not committed <= relayed_ids(trail):  # everything committed so far is relayed while the long one is open
        assert relay.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "relay did not catch up"
        time.sleep(0.3)
    long_tx.commit()  # the lowest id commits last
    long_tx.close()
    rows = audit_rows(database)
    assert min(r["id"] for r in rows if r["kind"] == "change") == lowest
    assert not any(r["after"] and r["after"].get("email") in ("rolled-back@example.com", "savepoint@example.com")
                   for r in rows)
    expected = {str(r["event_id"]) for r in rows}
    trail.start("stream")
    trail.start("sink")
    trail.wait_stored(len(expected), timeout=180)
    relay.terminate()
    assert relay.wait(30) == 0, log.read_text()

    stored = trail.event_ids()
    assert set(stored) == expected, f"missing {len(expected - set(stored))}, unexpected {len(set(stored) - expected)}"
    assert max(stored.values()) == 1
    assert verify_store(trail.store, trail.settings).ok

    # secrets in captured columns are redacted before they leave the relay
    from sealtrail.layout import data_prefix
    from sealtrail.objects import read_table

    afters = []
    for key in trail.store.keys(data_prefix(trail.settings.s3.prefix)):
        afters.extend(v for v in read_table(trail.store.get(key).body).column("after").to_pylist() if v)
    joined = " ".join(afters)
    assert "hunter2" not in joined and "4111 1111 1111 1111" not in joined
    assert '"password_hash":"[REDACTED]"' in joined and '"card":"[REDACTED]"' in joined


def test_relay_resumes_from_its_durable_position(trail, database: str) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("insert into users (email) select 'u' || g || '@example.com' from generate_series(1, 120) g")
        conn.execute("alter table users disable trigger sealtrail_capture")
        conn.execute("alter table users enable always trigger sealtrail_capture")
    first = Relay(trail.settings, database)
    try:
        assert first.run(once=True) == 122
        with pytest.raises(CaptureError, match="another relay"):
            Relay(trail.settings, database).open()
    finally:
        first.close()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("insert into users (email) values ('later@example.com')")
    second = Relay(trail.settings, database)
    try:
        assert second.run(once=True) == 1  # only the new row: nothing is sent twice after a clean stop
    finally:
        second.close()
        second.client.close()
    events = relayed_events(trail)
    assert len({e["event_id"] for e in events}) == 123
    [disabled] = [e for e in events if e["action"] == "security.capture_disabled"]
    assert disabled["category"] == "security" and disabled["actor"]["id"] == "postgres"
    assert "disable trigger" in disabled["metadata"]["query"]
    assert disabled["resource"] == {"type": "postgres.table", "id": "public.users"}
