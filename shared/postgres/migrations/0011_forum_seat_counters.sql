-- +goose Up
-- Seat counters on the forum row: a seat decision reads them under the
-- row lock instead of counting the forum's signups, and every change of a
-- signup's status updates them in the same transaction.
ALTER TABLE forum.forums
    ADD COLUMN confirmed_self      int NOT NULL DEFAULT 0 CHECK (confirmed_self >= 0),
    ADD COLUMN confirmed_nominated int NOT NULL DEFAULT 0 CHECK (confirmed_nominated >= 0),
    ADD COLUMN waitlisted          int NOT NULL DEFAULT 0 CHECK (waitlisted >= 0);
UPDATE forum.forums f SET
    confirmed_self      = c.confirmed_self,
    confirmed_nominated = c.confirmed_nominated,
    waitlisted          = c.waitlisted
FROM (SELECT forum_id,
             count(*) FILTER (WHERE status = 'confirmed' AND mode = 'self')      AS confirmed_self,
             count(*) FILTER (WHERE status = 'confirmed' AND mode = 'nominated') AS confirmed_nominated,
             count(*) FILTER (WHERE status = 'waitlisted')                        AS waitlisted
      FROM forum.signups GROUP BY forum_id) c
WHERE f.forum_id = c.forum_id;
-- Never more confirmed than seats.
ALTER TABLE forum.forums ADD CONSTRAINT forums_confirmed_within_capacity
    CHECK (confirmed_self + confirmed_nominated <= capacity);

-- +goose Down
ALTER TABLE forum.forums DROP CONSTRAINT forums_confirmed_within_capacity,
    DROP COLUMN confirmed_self, DROP COLUMN confirmed_nominated, DROP COLUMN waitlisted;
