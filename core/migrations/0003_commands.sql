-- (d) commands and their feedback (paper Figure 5d): the service's signed command, the device's
-- feedback signed over it, the gateway's relay signature over both. One row per answered command;
-- (service, device, sequence) is unique, so a replayed feedback is refused.
CREATE TABLE iot.commands (
    id                bigserial   PRIMARY KEY,
    service           bytea       NOT NULL CHECK (length(service) = 20),
    device            bytea       NOT NULL CHECK (length(device) = 20),
    sequence          bigint      NOT NULL CHECK (sequence >= 0),
    issued_at         bigint      NOT NULL,
    command           bytea       NOT NULL,
    command_hash      bytea       NOT NULL CHECK (length(command_hash) = 32),
    command_signature bytea       NOT NULL,
    feedback          bytea       NOT NULL,
    feedback_hash     bytea       NOT NULL CHECK (length(feedback_hash) = 32),
    device_signature  bytea       NOT NULL,
    gateway           bytea       NOT NULL CHECK (length(gateway) = 20),
    relay_signature   bytea       NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (service, device, sequence)
);
