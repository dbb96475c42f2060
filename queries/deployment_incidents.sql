-- Which deployment caused each incident: the one the data name, or a labelled guess?
--
-- Incidents that started in the window, one row each, ordered by started_at then incident_id.
-- cause_deployment_id is an explicit cause, the first of: incidents.deployment_id; a deployment
-- whose caused_incident_ids lists the incident; the first successful production deployment that
-- shipped the incident's feature_id before it started. cause says which. Only when there is no
-- explicit cause, guessed_deployment_id is the latest successful production deployment of the
-- incident's system in the 7 days before it started, and guess_reason says how long before (the
-- time-based link other tools make silently; debtlens never counts it in the keys).
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
    -- The first deployment (by time, then id) that shipped the incident's feature before it
    -- started, packed as in `events` below: a grouping rather than a sort of every pair.
    SELECT incident_id, substr(min(packed), 21) AS deployment_id
    FROM (
        SELECT i.incident_id,
               lpad(CAST(CAST(f.deployed_at AS BIGINT) AS VARCHAR), 20, '0') || f.deployment_id AS packed
        FROM i
        JOIN d_features f ON f.feature_id = i.feature_id AND f.deployed_at <= i.started_at
    )
    GROUP BY incident_id
),
-- Each system's deployments and incidents in time order: an incident's latest deployment is the
-- last one before it (a deployment at the same instant comes first), found as a running maximum
-- of the deployments' time and id packed into one text (a running maximum costs one comparison
-- a row; last_value IGNORE NULLS rescans its frame).
events AS (
    SELECT system, deployed_at AS at, 0 AS kind,
           lpad(CAST(CAST(deployed_at AS BIGINT) AS VARCHAR), 20, '0') || deployment_id AS packed,
           CAST(NULL AS VARCHAR) AS incident_id
    FROM d
    UNION ALL
    SELECT system, started_at AS at, 1 AS kind, CAST(NULL AS VARCHAR), incident_id
    FROM i
),
latest AS (
    SELECT incident_id, started_at, substr(packed, 21) AS deployment_id,
           -- A cast, not to_timestamp_micros, whose zone is the session's: a cluster's executor
           -- rebuilds the plan without it.
           CAST(CAST(substr(packed, 1, 20) AS BIGINT) AS TIMESTAMP(6) WITH TIME ZONE) AS deployed_at
    FROM (
        SELECT
            incident_id,
            at AS started_at,
            max(packed) OVER (PARTITION BY system ORDER BY at, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                AS packed
        FROM events
    )
    WHERE incident_id IS NOT NULL
),
guessed AS (
    SELECT incident_id, deployment_id, deployed_at, started_at
    FROM latest
    WHERE deployed_at > started_at - INTERVAL '7 days'
),
explained AS (
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
        END AS cause,
        g.deployment_id AS guess,
        g.deployed_at AS guess_at
    FROM i
    LEFT JOIN listed l ON l.incident_id = i.incident_id
    LEFT JOIN shipped s ON s.incident_id = i.incident_id
    LEFT JOIN guessed g ON g.incident_id = i.incident_id
)
SELECT
    incident_id,
    system,
    severity,
    started_at,
    resolved_at,
    cause_deployment_id,
    cause,
    CASE WHEN cause_deployment_id IS NULL THEN guess END AS guessed_deployment_id,
    CASE
        WHEN cause_deployment_id IS NULL AND guess IS NOT NULL THEN
            'latest successful production deployment of ' || system || ', '
            || CAST(round((date_part('epoch', started_at) - date_part('epoch', guess_at)) / 3600.0, 1) AS VARCHAR)
            || ' hours before'
        WHEN cause_deployment_id IS NULL THEN 'no production deployment of ' || system || ' in the 7 days before'
    END AS guess_reason
FROM explained
ORDER BY started_at, incident_id
