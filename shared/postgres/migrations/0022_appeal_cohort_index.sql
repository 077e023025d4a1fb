-- +goose Up
-- The monthly review reads the appeals received in one month with the
-- columns it reports. With them in the index the month is an index-only
-- range scan, whatever the order the rows lie in on disk: its cost follows
-- the month's appeals, not every appeal ever received (the plain index on
-- received_at was passed over for a scan of the whole table once the
-- month's rows were spread over many pages).
CREATE INDEX appeals_received_cohort ON appeal.appeals (received_at)
    INCLUDE (appeal_id, category, channel, county, assign_due, first_reply_due);
DROP INDEX appeal.appeals_received;

-- +goose Down
CREATE INDEX appeals_received ON appeal.appeals (received_at);
DROP INDEX appeal.appeals_received_cohort;
