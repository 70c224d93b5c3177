"""PostgreSQL change capture: triggers write an append-only audit table; a relay moves it to Kafka.

    sealtrail cdc install --database URL --table users --table orders
    sealtrail cdc run --database URL

``sql`` holds the SQL (pure), ``install`` applies it, ``relay`` moves captured
rows to audit.events with at-least-once delivery and a durable position that
cannot skip rows committed out of id order, and ``session`` sets the
``app.*`` settings the triggers read from the request context. psycopg is
imported only when used.
"""
