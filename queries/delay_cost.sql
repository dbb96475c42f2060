-- What does each system's debt cost in delayed value (product's unit, not engineering time)?
--
-- Shipped features in the window that carry cost_of_delay_per_week (what a week of delay costs
-- once the feature would have shipped, as product estimates it), one row per touched system and
-- a last row, (organisation), for the whole window. A valued feature's weeks late (actual_weeks
-- - estimated_weeks, not below 0; a feature on time or early lost nothing) are shared among its
-- systems as system_tax shares extra weeks: in proportion to each system's log tax, systems at or
-- below 1x taking none, equally when none is above 1x. attributed_delay_weeks adds those shares;
-- cost_of_delay adds each share times the feature's cost of delay per week, so both add up over
-- the systems to the organisation row. cost_low and cost_high are a 90% interval that joins two
-- uncertainties: whose delay it is (the shares with the system's tax at the ends of its 90%
-- interval, tax_low and tax_high) and which features the window happened to hold (the cost as a
-- sum of events, ± 1.645 x the square root of the sum of the features' squared costs; the low end
-- not below 0), so a cost that rests on a few large features is wide. The _per_month columns scale the window's figures to an average
-- month (30.436875 days / window_days). share_of_cost_of_delay = cost_of_delay / the
-- organisation's. Features without a value are counted in features_unvalued and left out of
-- every sum, never taken as 0. Computed in the engine by delay_cost(); the method is in the
-- README. Ordered by cost_of_delay desc, then system; the organisation last.
WITH costs AS (
    SELECT
        d['system'] AS system,
        d['features_valued'] AS features_valued,
        d['features_unvalued'] AS features_unvalued,
        d['attributed_delay_weeks'] AS attributed_delay_weeks,
        d['cost_of_delay'] AS cost_of_delay,
        d['cost_low'] AS cost_low,
        d['cost_high'] AS cost_high
    FROM (
        SELECT unnest(delay_cost(systems, estimated_weeks, actual_weeks, cost_of_delay_per_week)) AS d
        FROM window_features
    )
),
total AS (
    SELECT cost_of_delay AS cost_of_delay
    FROM costs
    WHERE system = '(organisation)'
)
SELECT
    c.system AS system,
    c.features_valued AS features_valued,
    c.features_unvalued AS features_unvalued,
    c.attributed_delay_weeks AS attributed_delay_weeks,
    c.cost_of_delay AS cost_of_delay,
    c.cost_low AS cost_low,
    c.cost_high AS cost_high,
    c.cost_of_delay * 30.436875 / window_days() AS cost_of_delay_per_month,
    c.cost_low * 30.436875 / window_days() AS cost_per_month_low,
    c.cost_high * 30.436875 / window_days() AS cost_per_month_high,
    c.cost_of_delay / NULLIF(total.cost_of_delay, 0.0) AS share_of_cost_of_delay
FROM costs c
CROSS JOIN total
ORDER BY c.system = '(organisation)', c.cost_of_delay DESC, c.system
