SELECT month, system, count(*) AS features, avg(ratio) AS slowdown_ratio
FROM (
    SELECT
        date_trunc('month', shipped_at)::DATE AS month,
        unnest(systems) AS system,
        actual_weeks / nullif(estimated_weeks, 0) AS ratio
    FROM features
    WHERE shipped_at <= now() AND actual_weeks IS NOT NULL
)
GROUP BY ALL
ORDER BY month, system
