-- How good is each team at estimating?
--
-- Shipped features in the window, one row per team ((none) for features without one), with
-- ratio = actual / estimated weeks: the exact median and 90th percentile (interpolated) of the
-- ratio, and the share of features done within their estimate (ratio <= 1).
SELECT
    team,
    count(*) AS features,
    median(ratio) AS median_ratio,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY ratio) AS p90_ratio,
    avg(CASE WHEN ratio <= 1.0 THEN 1.0 ELSE 0.0 END) AS on_time_share
FROM (
    SELECT
        coalesce(team, '(none)') AS team,
        actual_weeks / NULLIF(estimated_weeks, 0) AS ratio
    FROM window_features
)
GROUP BY team
ORDER BY team
