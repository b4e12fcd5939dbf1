-- The specs of the jobs this service offers, by paramHash, for its batch API (docs/market.md).
-- Not evidence: whoever reads a spec checks that its keccak256 is the job's paramHash on chain.
CREATE TABLE iotegrity.job_specs (
    param_hash bytea PRIMARY KEY CHECK (length(param_hash) = 32),
    spec bytea NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
