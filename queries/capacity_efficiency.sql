-- How much of the engineering budget does debt absorb?
--
-- One row per capacity row: the shipped features of that period (and team, when the row has
-- one), their estimated and actual weeks, efficiency = estimated / actual, and the budget
-- absorbed by the difference. Sums over a period with no shipped feature are null. Not windowed.
WITH per_row AS (
    SELECT
        c.period_start,
        c.period_end,
        c.team,
        c.budget,
        count(f.feature_id) AS features_shipped,
        sum(f.estimated_weeks) AS estimated_weeks,
        sum(f.actual_weeks) AS actual_weeks
    FROM capacity c
    LEFT JOIN shipped_features f
        ON CAST(f.shipped_at AS DATE) >= c.period_start
       AND CAST(f.shipped_at AS DATE) < c.period_end
       AND (c.team IS NULL OR f.team = c.team)
    GROUP BY c.period_start, c.period_end, c.team, c.budget
)
SELECT
    period_start,
    period_end,
    team,
    budget,
    features_shipped,
    estimated_weeks,
    actual_weeks,
    estimated_weeks / NULLIF(actual_weeks, 0) AS efficiency,
    CASE
        WHEN actual_weeks > 0 THEN budget * greatest(0.0, 1.0 - estimated_weeks / actual_weeks)
    END AS absorbed_budget
FROM per_row
ORDER BY period_start, team NULLS FIRST
