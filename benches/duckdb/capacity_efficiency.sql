SELECT
    c.period_start,
    c.period_end,
    c.team,
    c.budget,
    count(f.feature_id) AS features_shipped,
    sum(f.estimated_weeks) AS estimated_weeks,
    sum(f.actual_weeks) AS actual_weeks,
    sum(f.estimated_weeks) / nullif(sum(f.actual_weeks), 0) AS efficiency,
    CASE WHEN sum(f.actual_weeks) > 0
         THEN c.budget * greatest(0.0, 1.0 - sum(f.estimated_weeks) / sum(f.actual_weeks)) END AS absorbed_budget
FROM capacity c
LEFT JOIN features f
    ON f.shipped_at::DATE >= c.period_start AND f.shipped_at::DATE < c.period_end
   AND (c.team IS NULL OR f.team = c.team)
   AND f.shipped_at <= now() AND f.actual_weeks IS NOT NULL
GROUP BY c.period_start, c.period_end, c.team, c.budget
ORDER BY c.period_start, c.team NULLS FIRST
