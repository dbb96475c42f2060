-- How much slower is feature work on each system?
--
-- Shipped features in the window, one row per touched system. slowdown_ratio is the average of
-- actual / estimated weeks (3.2 means features touching the system take 3.2 times their
-- estimate); weighted_slowdown weighs it by size; extra_weeks is the time lost beyond estimates.
-- ratio_low and ratio_high are a 90% interval of slowdown_ratio: the mean plus or minus
-- Student's t(0.95, n - 1) standard errors of the n ratios (null with fewer than two). A
-- feature counts fully for every system it touches, so a healthy system that travels with slow
-- ones looks slow here: system_tax attributes the slowdown.
WITH per_system AS (
    SELECT
        system,
        count(*) AS features,
        avg(ratio) AS slowdown_ratio,
        sum(actual_weeks) / NULLIF(sum(estimated_weeks), 0) AS weighted_slowdown,
        sum(delay_days) AS total_delay_days,
        sum(actual_weeks - estimated_weeks) AS extra_weeks,
        count(ratio) AS n,
        sum(ratio * ratio) AS sum_squares,
        sum(ratio) AS sum_ratios
    FROM (
        SELECT
            unnest(systems) AS system,
            estimated_weeks,
            actual_weeks,
            delay_days,
            actual_weeks / NULLIF(estimated_weeks, 0) AS ratio
        FROM window_features
    )
    GROUP BY system
),
spread AS (
    SELECT
        *,
        student_t_quantile(0.95, n - 1)
            * sqrt(greatest(sum_squares - sum_ratios * slowdown_ratio, 0.0) / NULLIF(n - 1, 0) / n) AS half_width
    FROM per_system
)
SELECT
    system,
    features,
    slowdown_ratio,
    weighted_slowdown,
    total_delay_days,
    extra_weeks,
    slowdown_ratio - half_width AS ratio_low,
    slowdown_ratio + half_width AS ratio_high
FROM spread
ORDER BY slowdown_ratio DESC NULLS LAST, system
