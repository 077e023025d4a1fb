-- The deadline horizon: one row per item with a deadline (an appeal, a
-- subsidy payment), kept by the database itself, so that a deadline check
-- with nothing due reads this one table (three small indexes) rather than
-- appeals, their history, disbursements and settlements. On the first
-- event of a new backend each table read costs its catalog look-ups and
-- planning, about 0.5 ms of the backend's CPU each: the check's first
-- batch read four tables before this (docs/appeals.md, "The deadline
-- horizon"; README, Speed).
--
-- Per row: due, the earliest deadline the item has open now (NULL when it
-- has none: a closed appeal, a settled payment), and changed_at, the latest
-- business time at which it changed (an appeal's latest transition, a
-- payment's settledAt). A check as of asOf may skip a kind when no row of
-- it has due < asOf and none has changed_at > asOf: every item then stood
-- at asOf as it stands now, with nothing open past due. Otherwise it reads
-- the kind's own tables as before. The rows are conservative: a deleted or
-- truncated item may leave due earlier, or changed_at later, than the
-- truth, which only sends the check to the full read.
--
-- The triggers run as the owner (SECURITY DEFINER): the functions writing
-- appeals and payments need no grant on the table, and no function may
-- write it. Only a restore or a session with triggers disabled
-- (session_replication_role = replica) bypasses them; rebuild afterwards
-- with SELECT appeal.rebuild_deadlines(), subsidy.rebuild_deadlines()
-- (docs/operations.md).

-- +goose Up
CREATE TABLE qinqing.deadlines (
    kind       text NOT NULL CHECK (kind IN ('appeal', 'payment')),
    item       text NOT NULL,
    due        timestamptz,
    changed_at timestamptz,
    PRIMARY KEY (kind, item)
);
-- min(due) and max(changed_at) of a kind: one probe each.
CREATE INDEX deadlines_due ON qinqing.deadlines (kind, due) WHERE due IS NOT NULL;
CREATE INDEX deadlines_changed ON qinqing.deadlines (kind, changed_at) WHERE changed_at IS NOT NULL;
GRANT SELECT ON qinqing.deadlines TO qinqing_deadline_check;

-- An appeal's row: its open_due (0093) and its latest transition, from the
-- appeal row (updated_at, set with every transition) and its history (at).
-- +goose StatementBegin
CREATE FUNCTION appeal.track_deadline() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.appeal_id <> NEW.appeal_id) THEN
        DELETE FROM qinqing.deadlines WHERE kind = 'appeal' AND item = OLD.appeal_id;
        IF TG_OP = 'DELETE' THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO qinqing.deadlines AS d (kind, item, due, changed_at)
    VALUES ('appeal', NEW.appeal_id, NEW.open_due, NEW.updated_at)
    ON CONFLICT (kind, item) DO UPDATE SET due = EXCLUDED.due, changed_at = greatest(d.changed_at, EXCLUDED.changed_at)
        WHERE d.due IS DISTINCT FROM EXCLUDED.due OR d.changed_at IS NULL OR d.changed_at < EXCLUDED.changed_at;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER appeals_track_deadline AFTER INSERT OR UPDATE OR DELETE ON appeal.appeals
    FOR EACH ROW EXECUTE FUNCTION appeal.track_deadline();

-- appeal-router writes the appeal row before the history row, with the
-- same time, so this finds the row up to date and writes nothing; it keeps
-- changed_at right for a transition recorded without the appeal row's
-- updated_at.
-- +goose StatementBegin
CREATE FUNCTION appeal.track_change() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO qinqing.deadlines AS d (kind, item, due, changed_at)
    SELECT 'appeal', a.appeal_id, a.open_due, NEW.at FROM appeal.appeals a WHERE a.appeal_id = NEW.appeal_id
    ON CONFLICT (kind, item) DO UPDATE SET changed_at = EXCLUDED.changed_at
        WHERE d.changed_at IS NULL OR d.changed_at < EXCLUDED.changed_at;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER history_track_change AFTER INSERT OR UPDATE OF at ON appeal.history
    FOR EACH ROW EXECUTE FUNCTION appeal.track_change();

-- Every appeal's row again, from the tables: after a TRUNCATE (which row
-- triggers do not see) and for an operator after a restore.
-- +goose StatementBegin
CREATE FUNCTION appeal.rebuild_deadlines() RETURNS void LANGUAGE sql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM qinqing.deadlines WHERE kind = 'appeal';
    INSERT INTO qinqing.deadlines (kind, item, due, changed_at)
    SELECT 'appeal', a.appeal_id, a.open_due, greatest(a.updated_at, h.at)
    FROM appeal.appeals a LEFT JOIN (SELECT appeal_id, max(at) AS at FROM appeal.history GROUP BY appeal_id) h
        ON h.appeal_id = a.appeal_id;
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION appeal.rebuild_deadlines_after_truncate() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM appeal.rebuild_deadlines();
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER appeals_truncate_deadlines AFTER TRUNCATE ON appeal.appeals
    FOR EACH STATEMENT EXECUTE FUNCTION appeal.rebuild_deadlines_after_truncate();
CREATE TRIGGER history_truncate_deadlines AFTER TRUNCATE ON appeal.history
    FOR EACH STATEMENT EXECUTE FUNCTION appeal.rebuild_deadlines_after_truncate();

-- A payment's row: its due_at until it is settled; then no deadline, and
-- changed_at the treasury's settledAt (a check as of an earlier time still
-- counts it overdue). Disbursements and settlements are append-only (their
-- triggers refuse UPDATE and DELETE).
-- +goose StatementBegin
CREATE FUNCTION subsidy.track_deadline() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_NAME = 'disbursements' THEN
        INSERT INTO qinqing.deadlines AS d (kind, item, due) VALUES ('payment', NEW.disbursement_id, NEW.due_at)
        ON CONFLICT (kind, item) DO UPDATE SET due = EXCLUDED.due;
    ELSE
        INSERT INTO qinqing.deadlines AS d (kind, item, due, changed_at)
        VALUES ('payment', NEW.disbursement_id, NULL, NEW.settled_at)
        ON CONFLICT (kind, item) DO UPDATE SET due = NULL, changed_at = greatest(d.changed_at, EXCLUDED.changed_at);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER disbursements_track_deadline AFTER INSERT ON subsidy.disbursements
    FOR EACH ROW EXECUTE FUNCTION subsidy.track_deadline();
CREATE TRIGGER settlements_track_deadline AFTER INSERT ON subsidy.settlements
    FOR EACH ROW EXECUTE FUNCTION subsidy.track_deadline();

-- +goose StatementBegin
CREATE FUNCTION subsidy.rebuild_deadlines() RETURNS void LANGUAGE sql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM qinqing.deadlines WHERE kind = 'payment';
    INSERT INTO qinqing.deadlines (kind, item, due, changed_at)
    SELECT 'payment', d.disbursement_id, CASE WHEN s.disbursement_id IS NULL THEN d.due_at END, s.settled_at
    FROM subsidy.disbursements d LEFT JOIN subsidy.settlements s ON s.disbursement_id = d.disbursement_id;
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION subsidy.rebuild_deadlines_after_truncate() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM subsidy.rebuild_deadlines();
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER disbursements_truncate_deadlines AFTER TRUNCATE ON subsidy.disbursements
    FOR EACH STATEMENT EXECUTE FUNCTION subsidy.rebuild_deadlines_after_truncate();
CREATE TRIGGER settlements_truncate_deadlines AFTER TRUNCATE ON subsidy.settlements
    FOR EACH STATEMENT EXECUTE FUNCTION subsidy.rebuild_deadlines_after_truncate();

-- Only the owner rebuilds (an operator after a restore).
REVOKE EXECUTE ON FUNCTION appeal.rebuild_deadlines(), subsidy.rebuild_deadlines() FROM PUBLIC;

SELECT appeal.rebuild_deadlines();
SELECT subsidy.rebuild_deadlines();

-- +goose Down
DROP TRIGGER settlements_truncate_deadlines ON subsidy.settlements;
DROP TRIGGER disbursements_truncate_deadlines ON subsidy.disbursements;
DROP TRIGGER settlements_track_deadline ON subsidy.settlements;
DROP TRIGGER disbursements_track_deadline ON subsidy.disbursements;
DROP FUNCTION subsidy.rebuild_deadlines_after_truncate();
DROP FUNCTION subsidy.rebuild_deadlines();
DROP FUNCTION subsidy.track_deadline();
DROP TRIGGER history_truncate_deadlines ON appeal.history;
DROP TRIGGER appeals_truncate_deadlines ON appeal.appeals;
DROP TRIGGER history_track_change ON appeal.history;
DROP TRIGGER appeals_track_deadline ON appeal.appeals;
DROP FUNCTION appeal.rebuild_deadlines_after_truncate();
DROP FUNCTION appeal.rebuild_deadlines();
DROP FUNCTION appeal.track_change();
DROP FUNCTION appeal.track_deadline();
DROP TABLE qinqing.deadlines;
