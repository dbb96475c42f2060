WITH w AS (
    SELECT systems, delay_days
    FROM features
    WHERE actual_weeks IS NOT NULL
      AND shipped_at > TIMESTAMPTZ '@START@' AND shipped_at <= TIMESTAMPTZ '@AS_OF@'
)
SELECT
    system,
    count(*) AS features,
    sum(delay_days) AS total_delay_days,
    sum(delay_days / len(systems)) AS attributed_delay_days,
    sum(delay_days / len(systems)) / (SELECT nullif(sum(delay_days), 0) FROM w) AS share_of_delay
FROM (SELECT unnest(systems) AS system, systems, delay_days FROM w)
GROUP BY system
ORDER BY attributed_delay_days DESC NULLS LAST, system
