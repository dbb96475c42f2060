-- What incidents does each system cause, and how bad are they?
--
-- Incidents that started in the window, one row per system: how many, how many sev1 and sev2,
-- how many are still open, the mean time to resolve in hours, the users affected and the share
-- rooted in known debt (over incidents where that is known).
SELECT
    system,
    count(*) AS incidents,
    count(CASE WHEN severity = 'sev1' THEN 1 END) AS sev1,
    count(CASE WHEN severity = 'sev2' THEN 1 END) AS sev2,
    count(*) - count(resolved_at) AS open_incidents,
    avg((date_part('epoch', resolved_at) - date_part('epoch', started_at)) / 3600.0) AS mttr_hours,
    sum(users_affected) AS users_affected,
    avg(CAST(debt_related AS DOUBLE)) AS debt_related_share
FROM incidents
WHERE started_at > window_start()
  AND started_at <= window_end()
GROUP BY system
ORDER BY incidents DESC, system
