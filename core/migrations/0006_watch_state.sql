-- What the daemon records about watching a table, for the audit's overdue warning (hints, never
-- evidence: docs/receipts.md): its max_wait_secs, when it last looked at the table, and since when
-- it has known of rows waiting to be cut. A table gets its row when a daemon starts watching it, so
-- last_key is NULL until its first batch.
ALTER TABLE iotegrity.watermarks ALTER COLUMN last_key DROP NOT NULL;
ALTER TABLE iotegrity.watermarks ADD COLUMN max_wait_secs bigint;
ALTER TABLE iotegrity.watermarks ADD COLUMN seen_at timestamptz;
ALTER TABLE iotegrity.watermarks ADD COLUMN waiting_since timestamptz;
