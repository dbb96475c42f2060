-- How many delay-days does each system cause?
--
-- Shipped features in the window, one row per touched system. attributed_delay_days splits each
-- feature's delay evenly over the systems it touched, so the column adds up to the window's
-- total delay; share_of_delay is that system's part of the total.
WITH touched AS (
    SELECT
        unnest(systems) AS system,
        delay_days,
        delay_days / CAST(cardinality(systems) AS DOUBLE) AS attributed
    FROM window_features
),
total AS (
    SELECT sum(delay_days) AS delay_days FROM window_features
)
SELECT
    touched.system AS system,
    count(*) AS features,
    sum(touched.delay_days) AS total_delay_days,
    sum(touched.attributed) AS attributed_delay_days,
    sum(touched.attributed) / NULLIF(max(total.delay_days), 0) AS share_of_delay
FROM touched CROSS JOIN total
GROUP BY touched.system
ORDER BY attributed_delay_days DESC NULLS LAST, system
