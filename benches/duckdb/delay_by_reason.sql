WITH w AS (
    SELECT delay_reasons, delay_days
    FROM features
    WHERE actual_weeks IS NOT NULL
      AND shipped_at > TIMESTAMPTZ '@START@' AND shipped_at <= TIMESTAMPTZ '@AS_OF@'
)
SELECT
    reason,
    count(*) AS features,
    sum(delay_days) AS total_delay_days,
    sum(delay_days / greatest(coalesce(len(delay_reasons), 0), 1)) AS attributed_delay_days,
    sum(delay_days / greatest(coalesce(len(delay_reasons), 0), 1)) / (SELECT nullif(sum(delay_days), 0) FROM w)
        AS share_of_delay
FROM (
    SELECT
        unnest(CASE WHEN len(delay_reasons) > 0 THEN delay_reasons
                    WHEN delay_days > 0 THEN ['(unspecified)'] END) AS reason,
        delay_reasons,
        delay_days
    FROM w
)
GROUP BY reason
ORDER BY attributed_delay_days DESC NULLS LAST, reason
