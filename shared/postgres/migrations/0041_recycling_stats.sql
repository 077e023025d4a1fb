-- +goose Up
-- stats: the monthly statistics as published for a ping time. A ping for
-- the same period with the same event time (a replay under a new id, a
-- second PingSource) answers the stored reply and writes the stored
-- document again, byte for byte; a ping with another time computes afresh.
CREATE TABLE recycling.stats (
    period       text        NOT NULL,
    as_of        timestamptz NOT NULL,
    reply        json        NOT NULL,
    document     bytea       NOT NULL,
    event_source text        NOT NULL,
    event_id     text        NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, as_of)
);

-- +goose Down
DROP TABLE recycling.stats;
