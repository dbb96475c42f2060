-- How much of the engineering budget does debt absorb?
--
-- One row per capacity row: the shipped features of that period (and team, when the row has
-- one), their estimated and actual weeks, efficiency = estimated / actual, and the budget
-- absorbed by the difference. Sums over a period with no shipped feature are null. Not windowed.
--
-- Features are summed per (day, team) first: the range join to the capacity rows then pairs a
-- few thousand daily rows instead of every feature (a nested-loop join either way). Each day
-- keeps its sum exact (exact_partials) and each period adds those exactly (sum_partials), so a
-- period's sum is its features' exact sum rounded once: the same number as summing the features
-- directly, whatever the files' layout or the number of threads.
WITH daily AS (
    SELECT
        CAST(shipped_at AS DATE) AS day,
        team,
        count(*) AS features,
        exact_partials(estimated_weeks) AS estimated_weeks,
        exact_partials(actual_weeks) AS actual_weeks
    FROM shipped_features
    GROUP BY CAST(shipped_at AS DATE), team
),
per_row AS (
    SELECT
        c.period_start,
        c.period_end,
        c.team,
        c.budget,
        coalesce(sum(d.features), 0) AS features_shipped,
        sum_partials(d.estimated_weeks) AS estimated_weeks,
        sum_partials(d.actual_weeks) AS actual_weeks
    FROM capacity c
    LEFT JOIN daily d
        ON d.day >= c.period_start
       AND d.day < c.period_end
       AND (c.team IS NULL OR d.team = c.team)
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
