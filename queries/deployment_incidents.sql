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
    SELECT deployment_id, system, deployed_at
    FROM deployments
    WHERE environment = 'production' AND status = 'success'
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
    FROM incident_causes
),
latest AS (
    SELECT incident_id, started_at, substr(packed, 21) AS deployment_id,
           to_timestamp_micros(CAST(substr(packed, 1, 20) AS BIGINT)) AS deployed_at
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
    SELECT c.*, g.deployment_id AS guess, g.deployed_at AS guess_at
    FROM incident_causes c
    LEFT JOIN guessed g ON g.incident_id = c.incident_id
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
