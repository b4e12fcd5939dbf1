-- A batch's rows (key ‖ row hash, 40 bytes a row) are hashes, which do not compress: store them
-- out of line without trying (pglz spent more of the daemon's database time than anything else
-- while cutting batches of a few hundred rows; docs/benchmarks.md).
ALTER TABLE iotegrity.batches ALTER COLUMN rows SET STORAGE EXTERNAL;
