-- Is delay getting better or worse, quarter by quarter?
--
-- All shipped features by calendar quarter of shipped_at (2026-Q3). Not windowed.
SELECT
    quarter,
    count(*) AS features,
    sum(delay_days) AS total_delay_days,
    avg(delay_days) AS avg_delay_days,
    avg(actual_weeks / NULLIF(estimated_weeks, 0)) AS slowdown_ratio
FROM (
    SELECT
        concat(
            CAST(date_part('year', shipped_at) AS BIGINT),
            '-Q',
            CAST(date_part('quarter', shipped_at) AS BIGINT)
        ) AS quarter,
        delay_days,
        actual_weeks,
        estimated_weeks
    FROM shipped_features
)
GROUP BY quarter
ORDER BY quarter
