-- Which features shipped in the analysis window?
--
-- Shipped features with shipped_at in (as_of - window_days, as_of]: the population of every
-- windowed feature view. The same columns as features.
SELECT *
FROM shipped_features
WHERE shipped_at > window_start()
  AND shipped_at <= window_end()
