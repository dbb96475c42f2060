SELECT *
FROM features
WHERE shipped_at <= now() AND actual_weeks IS NOT NULL
ORDER BY feature_id
