-- +goose Up
-- The source of the event that requested a signup (e.g. /portals/<name>):
-- webhook-egress sends a signup's updates, and those of the appeals raised
-- with it, to the portal it came from. NULL for signups recorded before.
ALTER TABLE forum.signups ADD COLUMN source text;

-- +goose Down
ALTER TABLE forum.signups DROP COLUMN source;
