-- Does the 80/20 split between product and quality work hold?
--
-- One row per capacity row: actual weeks of shipped product and quality features in the period
-- (and team), the quality share, its target (0.2 when not set) and the gap. A null work_type
-- counts as product. Sums over a period with no shipped feature are null. Not windowed.
WITH per_row AS (
    SELECT
        c.period_start,
        c.period_end,
        c.team,
        coalesce(c.quality_share_target, 0.2) AS quality_share_target,
        CASE WHEN count(f.feature_id) > 0 THEN
            sum(CASE WHEN f.work_type = 'quality' THEN 0.0 ELSE f.actual_weeks END)
        END AS product_weeks,
        CASE WHEN count(f.feature_id) > 0 THEN
            sum(CASE WHEN f.work_type = 'quality' THEN f.actual_weeks ELSE 0.0 END)
        END AS quality_weeks
    FROM capacity c
    LEFT JOIN shipped_features f
        ON CAST(f.shipped_at AS DATE) >= c.period_start
       AND CAST(f.shipped_at AS DATE) < c.period_end
       AND (c.team IS NULL OR f.team = c.team)
    GROUP BY c.period_start, c.period_end, c.team, c.quality_share_target
)
SELECT
    period_start,
    period_end,
    team,
    product_weeks,
    quality_weeks,
    quality_weeks / NULLIF(product_weeks + quality_weeks, 0) AS quality_share,
    quality_share_target,
    quality_weeks / NULLIF(product_weeks + quality_weeks, 0) - quality_share_target AS gap
FROM per_row
ORDER BY period_start, team NULLS FIRST
