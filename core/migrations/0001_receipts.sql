-- The receipts store of iotegrityd: kept in its own schema, apart from the raw data it covers
-- (paper §4). Format of the JSON receipts: docs/receipts.md.
CREATE SCHEMA IF NOT EXISTS iotegrity;

-- One row per anchoring transaction (planned before it is sent, so a crash never re-plans it).
CREATE TABLE iotegrity.anchors (
    id            bigserial PRIMARY KEY,
    anchored_root bytea       NOT NULL UNIQUE,
    chain_id      bigint      NOT NULL,
    contract      bytea       NOT NULL,
    status        text        NOT NULL CHECK (status IN ('planned', 'confirmed')),
    tx_hash       bytea,
    block_number  bigint,
    planned_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_at  timestamptz
);

-- One row per batch of m rows of a watched table; `rows` packs (key i64 BE ‖ row hash) × m.
CREATE TABLE iotegrity.batches (
    id         bigserial PRIMARY KEY,
    table_name text        NOT NULL,
    first_key  bigint      NOT NULL,
    last_key   bigint      NOT NULL,
    m          integer     NOT NULL CHECK (m > 0),
    n          integer     NOT NULL CHECK (n > 0 AND n <= m),
    root       bytea       NOT NULL,
    rows       bytea       NOT NULL,
    anchor_id  bigint      REFERENCES iotegrity.anchors (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (table_name, first_key)
);
CREATE INDEX batches_unanchored ON iotegrity.batches (id) WHERE anchor_id IS NULL;

-- One receipt per sub-table, written when its anchor is confirmed.
CREATE TABLE iotegrity.receipts (
    batch_id   bigint  NOT NULL REFERENCES iotegrity.batches (id),
    sub_index  integer NOT NULL,
    table_name text    NOT NULL,
    first_key  bigint  NOT NULL,
    last_key   bigint  NOT NULL,
    receipt    jsonb   NOT NULL,
    PRIMARY KEY (batch_id, sub_index)
);
CREATE INDEX receipts_by_key ON iotegrity.receipts (table_name, first_key);

-- Last key cut into a batch, per table (advanced in the same transaction as the batch).
CREATE TABLE iotegrity.watermarks (
    table_name text   PRIMARY KEY,
    last_key   bigint NOT NULL
);
