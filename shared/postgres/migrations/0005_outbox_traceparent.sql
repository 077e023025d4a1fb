-- +goose Up
-- A follow-up keeps the W3C traceparent of the event that caused it (the
-- span that handled it): the relay sends it as the follow-up's traceparent
-- extension, so the next function's span is in the same trace however late
-- the row leaves the outbox. NULL when the causing event carried no trace
-- context and tracing was off.
ALTER TABLE qinqing.outbox ADD COLUMN traceparent text;
-- The outbox gauges (pending count, age of the oldest pending row) read
-- only the undelivered rows: this partial index holds the backlog and
-- nothing else.
CREATE INDEX outbox_pending_created ON qinqing.outbox (created_at) WHERE delivered_at IS NULL;

-- +goose Down
DROP INDEX qinqing.outbox_pending_created;
ALTER TABLE qinqing.outbox DROP COLUMN traceparent;
