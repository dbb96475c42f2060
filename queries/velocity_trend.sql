-- Is each system getting faster or slower to change, month by month?
--
-- All shipped features by calendar month of shipped_at (the month's first day) and touched
-- system: how many shipped and their average slowdown ratio. Not windowed.
SELECT
    month,
    system,
    count(*) AS features,
    avg(actual_weeks / NULLIF(estimated_weeks, 0)) AS slowdown_ratio
FROM (
    SELECT
        CAST(date_trunc('month', shipped_at) AS DATE) AS month,
        unnest(systems) AS system,
        actual_weeks,
        estimated_weeks
    FROM shipped_features
)
GROUP BY month, system
ORDER BY month, system
