SELECT *
FROM features
WHERE actual_weeks IS NOT NULL
  AND shipped_at > TIMESTAMPTZ '@START@' AND shipped_at <= TIMESTAMPTZ '@AS_OF@'
ORDER BY feature_id
