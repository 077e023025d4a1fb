-- +goose Up
-- A redelivery answers the whole stored reply, subject included.
ALTER TABLE qinqing.inbox ADD COLUMN reply_subject text;

-- +goose Down
ALTER TABLE qinqing.inbox DROP COLUMN reply_subject;
