-- The trail as an Athena table, read in place. Partition projection: no crawler, no MSCK REPAIR.
-- Replace the bucket and prefix; `chain` lists the partitions of audit.events (p000..p005 by default).
CREATE EXTERNAL TABLE IF NOT EXISTS sealtrail_events (
  seq              bigint,
  sealed_at        timestamp,
  src_offset       bigint,
  event_id         string,
  occurred_at      timestamp,
  category         string,
  action           string,
  outcome          string,
  actor_id         string,
  actor_type       string,
  actor_ip         string,
  actor_user_agent string,
  resource_type    string,
  resource_id      string,
  tenant           string,
  source           string,
  request_id       string,
  before           string,   -- RFC 8785 JSON text: json_extract_scalar(before, '$.status')
  after            string,
  metadata         string,
  hash             binary,
  key_id           string,
  signature        binary
)
PARTITIONED BY (dt string, chain string)
STORED AS PARQUET
LOCATION 's3://sealtrail-audit/trail/data/'
TBLPROPERTIES (
  'projection.enabled'          = 'true',
  'projection.dt.type'          = 'date',
  'projection.dt.format'        = 'yyyy-MM-dd',
  'projection.dt.range'         = '2026-01-01,NOW',
  'projection.chain.type'       = 'enum',
  'projection.chain.values'     = 'p000,p001,p002,p003,p004,p005',
  'storage.location.template'   = 's3://sealtrail-audit/trail/data/dt=${dt}/chain=${chain}/'
);

-- Failed logins by source address in the last day:
-- SELECT actor_ip, count(*) FROM sealtrail_events
--  WHERE action = 'auth.login_failed' AND dt >= date_format(current_date - interval '1' day, '%Y-%m-%d')
--  GROUP BY actor_ip ORDER BY 2 DESC;
