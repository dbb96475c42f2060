SELECT
    c.period_start,
    c.period_end,
    c.team,
    sum(f.actual_weeks) FILTER (WHERE f.work_type IS DISTINCT FROM 'quality') AS product_weeks,
    sum(f.actual_weeks) FILTER (WHERE f.work_type = 'quality') AS quality_weeks,
    quality_weeks / nullif(coalesce(product_weeks, 0) + coalesce(quality_weeks, 0), 0) AS quality_share,
    coalesce(c.quality_share_target, 0.2) AS quality_share_target,
    quality_share - coalesce(c.quality_share_target, 0.2) AS gap
FROM capacity c
LEFT JOIN features f
    ON f.shipped_at::DATE >= c.period_start AND f.shipped_at::DATE < c.period_end
   AND (c.team IS NULL OR f.team = c.team)
   AND f.shipped_at <= now() AND f.actual_weeks IS NOT NULL
GROUP BY c.period_start, c.period_end, c.team, c.quality_share_target
ORDER BY c.period_start, c.team NULLS FIRST
