SELECT
    system,
    count(*) AS incidents,
    count(*) FILTER (WHERE severity = 'sev1') AS sev1,
    count(*) FILTER (WHERE severity = 'sev2') AS sev2,
    count(*) - count(resolved_at) AS open_incidents,
    avg(epoch(resolved_at) - epoch(started_at)) / 3600 AS mttr_hours,
    sum(users_affected) AS users_affected,
    avg(debt_related::DOUBLE) AS debt_related_share
FROM incidents
WHERE started_at > TIMESTAMPTZ '@START@' AND started_at <= TIMESTAMPTZ '@AS_OF@'
GROUP BY system
ORDER BY incidents DESC, system
