-- Raw data taken in by iotegrityd's ingest API, with its chains of signatures (paper Figure 5),
-- in schema `iot`, apart from the receipts store. The daemon's receipts can watch iot.readings
-- like any other table.
CREATE SCHEMA IF NOT EXISTS iot;

-- (c) aggregates: a gateway's signature over several devices' readings; the originals are the
-- readings rows that point here.
CREATE TABLE iot.aggregates (
    id             bigserial   PRIMARY KEY,
    group_id       bytea       NOT NULL CHECK (length(group_id) = 32),
    aggregate_hash bytea       NOT NULL CHECK (length(aggregate_hash) = 32),
    gateway        bytea       NOT NULL CHECK (length(gateway) = 20),
    signature      bytea       NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);

-- (a, b) readings: one row per device reading, its payload and every signature of its chain.
-- (device, sequence) is unique: a replayed reading is refused, and gaps show in the audit.
CREATE TABLE iot.readings (
    id           bigserial   PRIMARY KEY,
    device       bytea       NOT NULL CHECK (length(device) = 20),
    sequence     bigint      NOT NULL CHECK (sequence >= 0),
    device_time  bigint      NOT NULL,
    payload      bytea       NOT NULL,
    payload_hash bytea       NOT NULL CHECK (length(payload_hash) = 32),
    signatures   bytea[]     NOT NULL,
    signers      bytea[]     NOT NULL,
    aggregate_id bigint      REFERENCES iot.aggregates (id),
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device, sequence)
);
