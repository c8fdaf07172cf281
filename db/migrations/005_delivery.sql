-- Delivery: quiet-hours math in SQL (used by the one recipients query) and a `skipped` status
-- for deliveries whose recipient paused, muted or left between selection and due time.

-- True when `at`, seen in the IANA zone `zone`, falls in [quiet_start, quiet_end). A window whose
-- start is after its end crosses midnight (22:00-07:00). An unknown zone counts as UTC rather than
-- failing the whole recipients query.
CREATE FUNCTION in_quiet_hours(at timestamptz, zone text, quiet_start time, quiet_end time)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
    local_time time;
BEGIN
    IF quiet_start IS NULL OR quiet_end IS NULL OR quiet_start = quiet_end THEN
        RETURN false;
    END IF;
    BEGIN
        local_time := (at AT TIME ZONE zone)::time;
    EXCEPTION WHEN invalid_parameter_value THEN
        local_time := (at AT TIME ZONE 'UTC')::time;
    END;
    IF quiet_start < quiet_end THEN
        RETURN local_time >= quiet_start AND local_time < quiet_end;
    END IF;
    RETURN local_time >= quiet_start OR local_time < quiet_end;
END $$;

ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'blocked', 'lost', 'skipped'));
