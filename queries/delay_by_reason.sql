-- Why are features late, in delay-days per reason?
--
-- Shipped features in the window, one row per delay reason. Each feature's delay is split evenly
-- over its reasons; a delayed feature with no reason counts under (unspecified), so
-- attributed_delay_days adds up to the window's total delay.
WITH reasons AS (
    -- One pass: a feature's own reasons, or (unspecified) when it is late without one.
    SELECT
        unnest(
            CASE
                WHEN cardinality(delay_reasons) > 0 THEN delay_reasons
                WHEN delay_days > 0 THEN ['(unspecified)']
            END
        ) AS reason,
        delay_days,
        delay_days / CAST(greatest(coalesce(cardinality(delay_reasons), 0), 1) AS DOUBLE) AS attributed
    FROM window_features
),
per_reason AS (
    SELECT
        reason,
        count(*) AS features,
        sum(delay_days) AS total_delay_days,
        sum(attributed) AS attributed_delay_days
    FROM reasons
    GROUP BY reason
),
-- The total over every feature in the window: joined to the few rows of per_reason, not to
-- every reason row.
total AS (
    SELECT sum(delay_days) AS delay_days FROM window_features
)
SELECT
    per_reason.reason AS reason,
    per_reason.features AS features,
    per_reason.total_delay_days AS total_delay_days,
    per_reason.attributed_delay_days AS attributed_delay_days,
    per_reason.attributed_delay_days / NULLIF(total.delay_days, 0) AS share_of_delay
FROM per_reason CROSS JOIN total
ORDER BY attributed_delay_days DESC NULLS LAST, reason
