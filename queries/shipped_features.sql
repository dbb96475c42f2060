-- Which features have shipped?
--
-- Every feature that counts as shipped: shipped_at and actual_weeks are both known and
-- shipped_at is not in the future. The same columns as features. Not windowed.
SELECT *
FROM features
WHERE shipped_at IS NOT NULL
  AND actual_weeks IS NOT NULL
  AND shipped_at <= now()
