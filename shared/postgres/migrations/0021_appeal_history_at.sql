-- +goose Up
-- The deadline check judges each appeal as it stood at the check's event
-- time. Appeals with a transition after that time (a ping that arrives
-- late or is sent again) are rebuilt from their history; this index finds
-- them without reading the history of every appeal ever received.
CREATE INDEX history_at ON appeal.history (at);

-- +goose Down
DROP INDEX appeal.history_at;
