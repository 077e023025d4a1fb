-- +goose Up
CREATE SCHEMA IF NOT EXISTS recycling;

-- licences: collectors' hazardous-waste operating licences (危险废物经营许可证).
-- Registering a licence number again replaces the row.
CREATE TABLE recycling.licences (
    licence_no        text PRIMARY KEY,
    collector_uscc    text        NOT NULL,
    collector_name    text        NOT NULL,
    valid_from        date        NOT NULL,
    valid_to          date        NOT NULL CHECK (valid_to >= valid_from),
    capacity_g        bigint      NOT NULL CHECK (capacity_g > 0),
    registered_at     timestamptz NOT NULL
);

-- collector_years: each collector's running total per calendar year
-- (business time zone, by occurredAt). Every accepted trade adds to its row
-- with a conditional UPDATE (single trades) or under a row lock (import
-- chunks), so the total never passes the licence's capacity whatever the
-- concurrency.
CREATE TABLE recycling.collector_years (
    collector_uscc text   NOT NULL,
    year           int    NOT NULL,
    total_g        bigint NOT NULL DEFAULT 0 CHECK (total_g >= 0),
    PRIMARY KEY (collector_uscc, year)
);

-- trades: one row per transfer manifest (转移联单). Weights are exact
-- integer grams. No foreign key to licences: a licence may be replaced, and
-- the bulk import's COPY should not pay a lookup per row.
CREATE TABLE recycling.trades (
    manifest_no     text        PRIMARY KEY,
    trade_id        text        NOT NULL UNIQUE,
    producer_uscc   text        NOT NULL,
    producer_name   text        NOT NULL,
    producer_county text        NOT NULL,
    collector_uscc  text        NOT NULL,
    licence_no      text        NOT NULL,
    waste_code      text        NOT NULL CHECK (waste_code = '900-052-31'),
    battery_sets    bigint      NOT NULL CHECK (battery_sets > 0),
    weight_g        bigint      NOT NULL CHECK (weight_g > 0),
    amount_fen      bigint      NOT NULL CHECK (amount_fen >= 0),
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    batch_id        text,
    documents       jsonb       NOT NULL DEFAULT '[]'
);
CREATE INDEX trades_by_occurred_at ON recycling.trades (occurred_at);

-- batches: one row per bulk import. rows_done is the last CSV row (the
-- header is row 1) whose outcome is committed; each chunk advances it in
-- the transaction that stores the chunk's trades and errors, so a retry
-- after a crash resumes exactly there. reply is set once the batch is
-- complete and answers every later run of the same batch.
CREATE TABLE recycling.batches (
    batch_id     text PRIMARY KEY,
    key          text        NOT NULL,
    as_of        timestamptz NOT NULL,
    rows_done    bigint      NOT NULL DEFAULT 1,
    accepted     bigint      NOT NULL DEFAULT 0,
    rejected     bigint      NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL,
    completed_at timestamptz,
    errors_key   text,
    reply        json
);

-- import_errors: the refused rows of a batch, written with their chunk and
-- turned into imports/<batchId>/errors.csv when the batch completes.
CREATE TABLE recycling.import_errors (
    batch_id    text   NOT NULL,
    row_no      bigint NOT NULL,
    trade_id    text   NOT NULL,
    manifest_no text   NOT NULL,
    reason      text   NOT NULL,
    field       text   NOT NULL,
    detail      text   NOT NULL,
    PRIMARY KEY (batch_id, row_no)
);

-- +goose Down
DROP SCHEMA recycling CASCADE;
