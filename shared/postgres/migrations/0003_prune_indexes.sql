-- +goose Up
-- The relay prunes delivered outbox rows after a retention period; this
-- index keeps that a range scan instead of a walk over the whole table.
CREATE INDEX outbox_delivered_at ON qinqing.outbox (delivered_at) WHERE delivered_at IS NOT NULL;

-- +goose Down
DROP INDEX qinqing.outbox_delivered_at;
