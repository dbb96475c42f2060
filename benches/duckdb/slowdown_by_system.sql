WITH per_system AS (
    SELECT
        system,
        count(*) AS features,
        avg(actual_weeks / nullif(estimated_weeks, 0)) AS slowdown_ratio,
        sum(actual_weeks) / nullif(sum(estimated_weeks), 0) AS weighted_slowdown,
        sum(delay_days) AS total_delay_days,
        sum(actual_weeks - estimated_weeks) AS extra_weeks,
        count(actual_weeks / nullif(estimated_weeks, 0)) AS n,
        stddev_samp(actual_weeks / nullif(estimated_weeks, 0)) AS sd
    FROM (
        SELECT unnest(systems) AS system, estimated_weeks, actual_weeks, delay_days
        FROM features
        WHERE actual_weeks IS NOT NULL
          AND shipped_at > TIMESTAMPTZ '@START@' AND shipped_at <= TIMESTAMPTZ '@AS_OF@'
    )
    GROUP BY system
)
SELECT
    system, features, slowdown_ratio, weighted_slowdown, total_delay_days, extra_weeks,
    slowdown_ratio - student_t_quantile(0.95, n - 1) * sd / sqrt(n) AS ratio_low,
    slowdown_ratio + student_t_quantile(0.95, n - 1) * sd / sqrt(n) AS ratio_high
FROM per_system
ORDER BY slowdown_ratio DESC NULLS LAST, system
