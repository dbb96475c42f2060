-- What does each system's debt cost in money?
--
-- The window's extra weeks per system (from slowdown_by_system) priced at the cost of an
-- engineer-week: the budget over the engineer-weeks of the capacity rows that overlap the window
-- and give engineer_weeks. Systems that ran ahead of estimate cost 0. tax, tax_low and tax_high
-- are the attributed velocity tax (system_tax); attributed_cost prices system_tax's
-- attributed_extra_weeks the same way, so it adds up over the systems instead of counting a
-- feature once per system it touches.
WITH rate AS (
    SELECT sum(budget) / NULLIF(sum(engineer_weeks), 0) AS cost_per_engineer_week
    FROM capacity
    WHERE engineer_weeks IS NOT NULL
      AND period_start <= CAST(window_end() AS DATE)
      AND period_end > CAST(window_start() AS DATE)
)
SELECT
    s.system AS system,
    s.extra_weeks AS extra_weeks,
    rate.cost_per_engineer_week AS cost_per_engineer_week,
    greatest(s.extra_weeks, 0.0) * rate.cost_per_engineer_week AS cost,
    t.tax AS tax,
    t.tax_low AS tax_low,
    t.tax_high AS tax_high,
    greatest(t.attributed_extra_weeks, 0.0) * rate.cost_per_engineer_week AS attributed_cost
FROM slowdown_by_system s
CROSS JOIN rate
LEFT JOIN system_tax t ON t.system = s.system
ORDER BY cost DESC NULLS LAST, system
