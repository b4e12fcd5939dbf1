-- Receipt format 2 (docs/receipts.md): a receipt's rows — the sub-table's bytes, (key ‖ row hash)
-- 40 bytes a row — are kept as bytea beside the rest of the receipt, so an audit reads millions of
-- row hashes at memory speed instead of through JSON. Stored uncompressed: hashes do not compress.
-- (Format 1 receipts, written by pre-release builds, keep their rows in the JSON and NULL here;
-- this build reports them as unsupported rather than reading them.)
ALTER TABLE iotegrity.receipts ADD COLUMN rows bytea CHECK (length(rows) > 0 AND length(rows) % 40 = 0);
ALTER TABLE iotegrity.receipts ALTER COLUMN rows SET STORAGE EXTERNAL;

-- Each receipt as one JSON document, exactly as `iotegrity receipt show` prints it.
CREATE VIEW iotegrity.receipt_documents AS
SELECT batch_id, sub_index, table_name, first_key, last_key,
       receipt || jsonb_build_object('rows', '0x' || encode(rows, 'hex')) AS receipt
FROM iotegrity.receipts;
