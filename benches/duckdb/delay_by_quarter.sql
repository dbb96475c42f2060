SELECT
    year(shipped_at) || '-Q' || quarter(shipped_at) AS quarter,
    count(*) AS features,
    sum(delay_days) AS total_delay_days,
    avg(delay_days) AS avg_delay_days,
    avg(actual_weeks / nullif(estimated_weeks, 0)) AS slowdown_ratio
FROM features
WHERE shipped_at <= now() AND actual_weeks IS NOT NULL
GROUP BY ALL
ORDER BY quarter
