-- Which deployment does the data name as each incident's cause?
--
-- Incidents that started in the window, one row each, with their explicit cause: the first of
-- incidents.deployment_id; a successful production deployment whose caused_incident_ids lists
-- the incident (the smallest id); the first successful production deployment that shipped the
-- incident's feature_id before it started. cause says which; both null without one. The one
-- definition of a caused incident that deployment_incidents and delivery_performance read.
WITH d AS (
    SELECT deployment_id, system, deployed_at, feature_ids, caused_incident_ids
    FROM deployments
    WHERE environment = 'production' AND status = 'success'
),
i AS (
    SELECT incident_id, system, severity, started_at, resolved_at, feature_id, deployment_id
    FROM incidents
    WHERE started_at > window_start()
      AND started_at <= window_end()
),
-- The lists as rows, so that the joins below are on keys.
d_incidents AS (
    SELECT deployment_id, unnest(caused_incident_ids) AS incident_id
    FROM d
    WHERE caused_incident_ids IS NOT NULL
),
d_features AS (
    SELECT deployment_id, deployed_at, unnest(feature_ids) AS feature_id
    FROM d
    WHERE feature_ids IS NOT NULL
),
listed AS (
    SELECT i.incident_id, min(l.deployment_id) AS deployment_id
    FROM i
    JOIN d_incidents l ON l.incident_id = i.incident_id
    GROUP BY i.incident_id
),
shipped AS (
    SELECT incident_id, deployment_id
    FROM (
        SELECT i.incident_id, f.deployment_id,
               row_number() OVER (PARTITION BY i.incident_id ORDER BY f.deployed_at, f.deployment_id) AS n
        FROM i
        JOIN d_features f ON f.feature_id = i.feature_id AND f.deployed_at <= i.started_at
    )
    WHERE n = 1
)
SELECT
    i.incident_id,
    i.system,
    i.severity,
    i.started_at,
    i.resolved_at,
    coalesce(i.deployment_id, l.deployment_id, s.deployment_id) AS cause_deployment_id,
    CASE
        WHEN i.deployment_id IS NOT NULL THEN 'incidents.deployment_id'
        WHEN l.deployment_id IS NOT NULL THEN 'deployments.caused_incident_ids'
        WHEN s.deployment_id IS NOT NULL THEN 'shipped its feature ' || i.feature_id
    END AS cause
FROM i
LEFT JOIN listed l ON l.incident_id = i.incident_id
LEFT JOIN shipped s ON s.incident_id = i.incident_id
