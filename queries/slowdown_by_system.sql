-- How much slower is feature work on each system?
--
-- Shipped features in the window, one row per touched system. slowdown_ratio is the average of
-- actual / estimated weeks (3.2 means features touching the system take 3.2 times their
-- estimate); weighted_slowdown weighs it by size; extra_weeks is the time lost beyond estimates.
SELECT
    system,
    count(*) AS features,
    avg(actual_weeks / NULLIF(estimated_weeks, 0)) AS slowdown_ratio,
    sum(actual_weeks) / NULLIF(sum(estimated_weeks), 0) AS weighted_slowdown,
    sum(delay_days) AS total_delay_days,
    sum(actual_weeks - estimated_weeks) AS extra_weeks
FROM (
    SELECT unnest(systems) AS system, estimated_weeks, actual_weeks, delay_days
    FROM window_features
)
GROUP BY system
ORDER BY slowdown_ratio DESC NULLS LAST, system
