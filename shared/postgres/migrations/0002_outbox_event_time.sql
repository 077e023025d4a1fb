-- +goose Up
-- The CloudEvents time of a follow-up is when its occurrence happened: the
-- time of the event that caused it (so a replayed week gives the same
-- times), not when the outbox row was written.
ALTER TABLE qinqing.outbox ADD COLUMN event_time timestamptz;

-- +goose Down
ALTER TABLE qinqing.outbox DROP COLUMN event_time;
