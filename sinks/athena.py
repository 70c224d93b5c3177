"""Athena tables over the bucket, generated from the Parquet schema so the two cannot drift.

Partition projection on `dt` (a date) and `chain` (an enum of the chains)
means no crawler and no MSCK REPAIR: a new day or object is queryable as soon
as it is written. A second table reads the digests (JSON) for auditors who
want to see what the sink recorded.
"""

from __future__ import annotations

import pyarrow as pa

from sealtrail.layout import DATA, DIGESTS
from sealtrail.objects import SCHEMA


def hive_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_int32(t):
        return "int"
    if pa.types.is_string(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    raise ValueError(f"no Athena type for {t}")


def events_ddl(bucket: str, prefix: str, chains: int, table: str = "sealtrail_events",
               since: str = "2026-01-01") -> str:
    columns = ",\n".join(f"  `{f.name}` {hive_type(f.type)}" for f in SCHEMA)
    location = f"s3://{bucket}/{prefix}{DATA}"
    chain_values = ",".join(f"p{i:03d}" for i in range(chains))
    return f"""CREATE EXTERNAL TABLE IF NOT EXISTS `{table}` (
{columns}
)
PARTITIONED BY (`dt` string, `chain` string)
STORED AS PARQUET
LOCATION '{location}'
TBLPROPERTIES (
  'parquet.compression' = 'ZSTD',
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '{since},NOW',
  'projection.chain.type' = 'enum',
  'projection.chain.values' = '{chain_values}',
  'storage.location.template' = '{location}dt=${{dt}}/chain=${{chain}}/'
)"""


def digests_ddl(bucket: str, prefix: str, chains: int, table: str = "sealtrail_digests") -> str:
    location = f"s3://{bucket}/{prefix}{DIGESTS}"
    chain_values = ",".join(f"p{i:03d}" for i in range(chains))
    return f"""CREATE EXTERNAL TABLE IF NOT EXISTS `{table}` (
  `format` string,
  `created_at` string,
  `objects` array<struct<key:string,version_id:string,sha256:string,first:bigint,last:bigint,size:bigint>>,
  `head` struct<seq:bigint,hash:string,sealed_at:string,key_id:string,signature:string>,
  `previous` struct<key:string,sha256:string,last:bigint>,
  `key_id` string,
  `signature` string
)
PARTITIONED BY (`chain` string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION '{location}'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.chain.type' = 'enum',
  'projection.chain.values' = '{chain_values}',
  'storage.location.template' = '{location}chain=${{chain}}/'
)"""
