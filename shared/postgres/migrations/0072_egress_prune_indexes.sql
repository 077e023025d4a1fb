-- +goose Up
-- webhook-egress prunes delivery records older than EGRESS_RETENTION;
-- these indexes keep that a range scan.
CREATE INDEX attempts_attempted_at ON egress.attempts (attempted_at);
CREATE INDEX deliveries_settled ON egress.deliveries (updated_at) WHERE state IN ('delivered', 'failed');

-- +goose Down
DROP INDEX egress.deliveries_settled;
DROP INDEX egress.attempts_attempted_at;
