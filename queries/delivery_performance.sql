-- How often and how safely does each system deliver: the four DORA keys, with incidents tied to the change that caused them?
--
-- Successful production deployments in the window, one row per system and a last row,
-- (organisation), for all of them. deployments_per_week and deploy_days_per_week: deployments,
-- and days with one, per 7 days of the window. lead_time_hours: the median hours from
-- first_commit_at to deployed_at, over the lead_time_deployments that give first_commit_at.
-- A deployment failed when it caused an incident (explicitly: deployment_incidents's
-- cause_deployment_id, never a guess) or another deployment rolled it back (rollback_of);
-- change_failure_rate = failed_deployments / deployments, with cfr_low and cfr_high its Wilson 90%
-- interval. recovery_hours: the median hours from a failed deployment's failure showing (its first
-- incident's start, or its deployment when it caused none) to recovery (the earlier of its incidents
-- all resolved and its rollback), over the recoveries so far (a failure still open is counted in
-- the rate, not here). rework_rate: deployments that rolled another back or were
-- made to fix incidents (fixes_incident_ids), the unplanned work of DORA 2024, / deployments.
-- Each key has its DORA performance band (elite, high, medium, low) by the thresholds of the band
-- source (band_source; the README lists them); null where the key has no data. Ordered by system,
-- the organisation last.
WITH d AS (
    SELECT deployment_id, system, deployed_at, first_commit_at, rollback_of, fixes_incident_ids, feature_ids,
           caused_incident_ids
    FROM deployments
    WHERE environment = 'production' AND status = 'success'
),
wd AS (
    SELECT *
    FROM d
    WHERE deployed_at > window_start()
      AND deployed_at <= window_end()
),
-- Only incidents of the window can have been caused by its deployments (and none after as_of
-- counts): the store's incidents are sorted by started_at, so the others are not read.
wi AS (
    SELECT incident_id, feature_id, deployment_id, started_at, resolved_at
    FROM incidents
    WHERE started_at > window_start()
      AND started_at <= window_end()
),
-- The lists as rows, so that the joins below are on keys.
d_features AS (
    SELECT deployment_id, deployed_at, unnest(feature_ids) AS feature_id
    FROM d
    WHERE feature_ids IS NOT NULL
),
shipped AS (
    -- The first deployment (by time, then id) that shipped the incident's feature before it
    -- started: the least of the time and id packed in one string (microseconds, zero-padded to
    -- 20 digits, then the id), a grouping rather than a sort of every pair.
    SELECT substr(min(packed), 21) AS deployment_id, incident_id
    FROM (
        SELECT i.incident_id,
               lpad(CAST(CAST(f.deployed_at AS BIGINT) AS VARCHAR), 20, '0') || f.deployment_id AS packed
        FROM wi i
        JOIN d_features f ON f.feature_id = i.feature_id AND f.deployed_at <= i.started_at
        WHERE i.deployment_id IS NULL
    )
    GROUP BY incident_id
),
caused AS (
    SELECT deployment_id, incident_id FROM wi WHERE deployment_id IS NOT NULL
    UNION
    SELECT deployment_id, unnest(caused_incident_ids) AS incident_id
    FROM d
    WHERE caused_incident_ids IS NOT NULL
    UNION
    SELECT deployment_id, incident_id FROM shipped
),
per_deployment AS (
    SELECT
        wd.deployment_id,
        wd.system,
        wd.deployed_at,
        wd.first_commit_at,
        wd.rollback_of,
        wd.fixes_incident_ids,
        count(i.incident_id) AS incidents,
        count(i.resolved_at) AS resolved,
        min(i.started_at) AS first_started,
        max(i.resolved_at) AS last_resolved
    FROM wd
    LEFT JOIN caused c ON c.deployment_id = wd.deployment_id
    LEFT JOIN wi i ON i.incident_id = c.incident_id
    GROUP BY wd.deployment_id, wd.system, wd.deployed_at, wd.first_commit_at, wd.rollback_of, wd.fixes_incident_ids
),
rolled AS (
    SELECT rollback_of AS deployment_id, min(deployed_at) AS rolled_back_at
    FROM d
    WHERE rollback_of IS NOT NULL
    GROUP BY rollback_of
),
keyed AS (
    SELECT
        p.system,
        p.deployed_at,
        (date_part('epoch', p.deployed_at) - date_part('epoch', p.first_commit_at)) / 3600.0 AS lead_hours,
        p.incidents > 0 OR r.rolled_back_at IS NOT NULL AS failed,
        (date_part('epoch', CASE
            WHEN p.incidents > 0 AND p.resolved = p.incidents AND r.rolled_back_at IS NOT NULL
                THEN least(p.last_resolved, r.rolled_back_at)
            WHEN p.incidents > 0 AND p.resolved = p.incidents THEN p.last_resolved
            ELSE r.rolled_back_at
        END) - date_part('epoch', coalesce(p.first_started, p.deployed_at)))
            / 3600.0 AS recovery_hours,
        p.rollback_of IS NOT NULL OR coalesce(cardinality(p.fixes_incident_ids), 0) > 0 AS rework
    FROM per_deployment p
    LEFT JOIN rolled r ON r.deployment_id = p.deployment_id
),
keys AS (
    SELECT
        coalesce(system, '(organisation)') AS system,
        count(*) AS deployments,
        count(*) * 7.0 / window_days() AS deployments_per_week,
        count(DISTINCT date_trunc('day', deployed_at)) * 7.0 / window_days() AS deploy_days_per_week,
        count(lead_hours) AS lead_time_deployments,
        median(lead_hours) AS lead_time_hours,
        count(CASE WHEN failed THEN 1 END) AS failed_deployments,
        count(recovery_hours) AS recoveries,
        median(recovery_hours) AS recovery_hours,
        count(CASE WHEN rework THEN 1 END) AS rework_deployments
    FROM keyed
    GROUP BY ROLLUP (system)
    HAVING count(*) > 0
),
rates AS (
    SELECT
        *,
        CAST(failed_deployments AS DOUBLE) / deployments AS p,
        CAST(deployments AS DOUBLE) AS n,
        2.705543454095404 AS z2
    FROM keys
)
SELECT
    system,
    deployments,
    deployments_per_week,
    deploy_days_per_week,
    lead_time_deployments,
    lead_time_hours,
    failed_deployments,
    p AS change_failure_rate,
    (p + z2 / (2.0 * n) - sqrt(z2) * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))) / (1.0 + z2 / n) AS cfr_low,
    (p + z2 / (2.0 * n) + sqrt(z2) * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))) / (1.0 + z2 / n) AS cfr_high,
    recoveries,
    recovery_hours,
    rework_deployments,
    CAST(rework_deployments AS DOUBLE) / deployments AS rework_rate,
    CASE
        WHEN deployments_per_week >= 7.0 THEN 'elite'
        WHEN deployments_per_week >= 1.0 THEN 'high'
        WHEN deployments_per_week >= 12.0 / 52.0 THEN 'medium'
        ELSE 'low'
    END AS deployment_frequency_band,
    CASE
        WHEN lead_time_hours IS NULL THEN NULL
        WHEN lead_time_hours < 24.0 THEN 'elite'
        WHEN lead_time_hours < 168.0 THEN 'high'
        WHEN lead_time_hours < 720.0 THEN 'medium'
        ELSE 'low'
    END AS lead_time_band,
    CASE
        WHEN p <= 0.05 THEN 'elite'
        WHEN p <= 0.10 THEN 'high'
        WHEN p <= 0.15 THEN 'medium'
        ELSE 'low'
    END AS change_failure_band,
    CASE
        WHEN recovery_hours IS NULL THEN NULL
        WHEN recovery_hours < 1.0 THEN 'elite'
        WHEN recovery_hours < 24.0 THEN 'high'
        WHEN recovery_hours < 168.0 THEN 'medium'
        ELSE 'low'
    END AS recovery_band,
    'DORA 2023' AS band_source
FROM rates
ORDER BY system = '(organisation)', system
