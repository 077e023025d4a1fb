-- +goose Up
-- open311 lists a portal's requests: the appeals created by events from
-- that portal's source (/portals/<name>), newest first, within a date
-- range. This index serves those reads without scanning other portals'
-- appeals.
CREATE INDEX appeals_by_source ON appeal.appeals (source, received_at DESC);

-- +goose Down
DROP INDEX appeal.appeals_by_source;
