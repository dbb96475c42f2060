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
per_system AS (
    SELECT
        system,
        count(*) AS features,
        sum(delay_days) AS total_delay_days,
        sum(attributed) AS attributed_delay_days
    FROM touched
    GROUP BY system
),
-- The total over every feature in the window, systems or not: joined to the few rows of
-- per_system, not to every touched row.
total AS (
    SELECT sum(delay_days) AS delay_days FROM window_features
)
SELECT
    per_system.system AS system,
    per_system.features AS features,
    per_system.total_delay_days AS total_delay_days,
    per_system.attributed_delay_days AS attributed_delay_days,
    per_system.attributed_delay_days / NULLIF(total.delay_days, 0) AS share_of_delay
FROM per_system CROSS JOIN total
ORDER BY attributed_delay_days DESC NULLS LAST, system
