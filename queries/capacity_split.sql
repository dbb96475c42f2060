-- Does the 80/20 split between product and quality work hold?
--
-- One row per capacity row: actual weeks of shipped product and quality features in the period
-- (and team), the quality share, its target (0.2 when not set) and the gap. A null work_type
-- counts as product. Sums over a period with no shipped feature are null. Not windowed.
WITH daily AS (
    -- Summed per (day, team) first, so the range join pairs days, not features. The daily sums
    -- stay exact (exact_partials) and each period adds them exactly (sum_partials): its sums are
    -- its features' exact sums rounded once, whatever the layout or the threads.
    SELECT
        CAST(shipped_at AS DATE) AS day,
        team,
        count(*) AS features,
        exact_partials(CASE WHEN work_type = 'quality' THEN 0.0 ELSE actual_weeks END) AS product_weeks,
        exact_partials(CASE WHEN work_type = 'quality' THEN actual_weeks ELSE 0.0 END) AS quality_weeks
    FROM shipped_features
    GROUP BY CAST(shipped_at AS DATE), team
),
per_row AS (
    SELECT
        c.period_start,
        c.period_end,
        c.team,
        coalesce(c.quality_share_target, 0.2) AS quality_share_target,
        CASE WHEN sum(d.features) > 0 THEN sum_partials(d.product_weeks) END AS product_weeks,
        CASE WHEN sum(d.features) > 0 THEN sum_partials(d.quality_weeks) END AS quality_weeks
    FROM capacity c
    LEFT JOIN daily d
        ON d.day >= c.period_start
       AND d.day < c.period_end
       AND (c.team IS NULL OR d.team = c.team)
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
