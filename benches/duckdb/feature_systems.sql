SELECT * FROM (
    SELECT feature_id, unnest(systems) AS system, * EXCLUDE (feature_id, systems, cost_of_delay_per_week)
    FROM features
)
ORDER BY feature_id, system
