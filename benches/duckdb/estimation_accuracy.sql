SELECT
    coalesce(team, '(none)') AS team,
    count(*) AS features,
    median(actual_weeks / nullif(estimated_weeks, 0)) AS median_ratio,
    quantile_cont(actual_weeks / nullif(estimated_weeks, 0), 0.9) AS p90_ratio,
    avg(CASE WHEN actual_weeks / nullif(estimated_weeks, 0) <= 1 THEN 1.0 ELSE 0.0 END) AS on_time_share
FROM features
WHERE actual_weeks IS NOT NULL
  AND shipped_at > TIMESTAMPTZ '@START@' AND shipped_at <= TIMESTAMPTZ '@AS_OF@'
GROUP BY ALL
ORDER BY team
