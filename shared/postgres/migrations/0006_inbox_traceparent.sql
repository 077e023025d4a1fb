-- +goose Up
-- The inbox keeps the traceparent of the span that handled each event, so
-- a later step of the same case finds its trace by the event that began
-- it (a business row records that event's source and id): the deadline
-- check's overdue announcement continues the appeal's trace this way.
ALTER TABLE qinqing.inbox ADD COLUMN traceparent text;

-- +goose Down
ALTER TABLE qinqing.inbox DROP COLUMN traceparent;
