-- Does the definition of done pay: which items go with fewer incidents, and at what cost in time?
--
-- Shipped features in the window, one row per definition-of-done item (in dod_compliance's
-- order), comparing the features shipped with the item (true) and without it (false; null is
-- unknown and left out). An incident counts against a feature when its feature_id names it and it
-- started in the follow-up: from shipped_at to 90 days after, or to as_of when that comes first
-- (each feature's days of follow-up are its exposure). incidents_per_feature_with/_without,
-- users_affected_per_feature_with/_without: over the features of each side. incident_rate_ratio
-- compares incidents per day of follow-up with the item against without it within strata of the
-- same team and the same set of systems (Mantel-Haenszel), so that "features without runbooks"
-- does not just mean "features on the risky system"; rr_low and rr_high are its 90% interval from
-- the larger of two variances of the log ratio: Greenland-Robins's (incidents as Poisson counts)
-- and the one with features as independent units (when a few features cause many incidents);
-- null when either side has no incident.
-- sev1_ratio is the same ratio over sev1 incidents. mttr_hours_with/_without: the median hours to
-- resolve of each side's incidents. effort_ratio_with/_without: the median actual / estimated
-- weeks of each side's features (what the item costs in time). confidence: high with at least 30
-- features on each side, 20 incidents and rr_high at most 3 x rr_low; medium with at least 10 on
-- each side, 5 incidents and an interval; low otherwise. Below 1 the item goes with fewer
-- incidents. The method is in the README.
WITH f AS (
    SELECT
        feature_id,
        coalesce(team, '') || ' / ' || array_to_string(array_sort(array_distinct(systems)), ', ') AS stratum,
        actual_weeks / NULLIF(estimated_weeks, 0.0) AS ratio,
        shipped_at,
        least(shipped_at + INTERVAL '90 days', window_end()) AS follow_end,
        dod_acceptance, dod_unit_tests, dod_integration_tests, dod_monitoring,
        dod_feature_flag, dod_docs, dod_runbook, dod_perf_benchmark
    FROM window_features
),
caused AS (
    SELECT
        f.feature_id,
        i.severity,
        i.users_affected,
        (date_part('epoch', i.resolved_at) - date_part('epoch', i.started_at)) / 3600.0 AS hours
    FROM f
    JOIN incidents i ON i.feature_id = f.feature_id
    WHERE i.started_at >= f.shipped_at
      AND i.started_at <= f.follow_end
      -- Implied by the two above; said so that only the window's incidents are read.
      AND i.started_at > window_start()
      AND i.started_at <= window_end()
),
counts AS (
    SELECT
        feature_id,
        count(*) AS incidents,
        count(CASE WHEN severity = 'sev1' THEN 1 END) AS sev1,
        sum(users_affected) AS users
    FROM caused
    GROUP BY feature_id
),
-- Each stratum named by a number, so that the rows below are grouped and joined on integers
-- (the strings once per stratum here, not once per feature and item).
stratum_ids AS (
    SELECT stratum, row_number() OVER (ORDER BY stratum) AS sid
    FROM (SELECT DISTINCT stratum FROM f)
),
-- Each feature with its follow-up and incident counts, joined before it is repeated for the
-- eight items (a join of the window's features, not of eight times as many rows).
followed AS (
    SELECT
        f.feature_id,
        s.sid,
        f.ratio,
        (date_part('epoch', f.follow_end) - date_part('epoch', f.shipped_at)) / 86400.0 AS days,
        coalesce(c.incidents, 0) AS incidents,
        coalesce(c.sev1, 0) AS sev1,
        coalesce(c.users, 0) AS users,
        f.dod_acceptance, f.dod_unit_tests, f.dod_integration_tests, f.dod_monitoring,
        f.dod_feature_flag, f.dod_docs, f.dod_runbook, f.dod_perf_benchmark
    FROM f
    JOIN stratum_ids s ON s.stratum = f.stratum
    LEFT JOIN counts c ON c.feature_id = f.feature_id
),
items (position, item) AS (
    VALUES (1, 'dod_acceptance'), (2, 'dod_unit_tests'), (3, 'dod_integration_tests'), (4, 'dod_monitoring'),
           (5, 'dod_feature_flag'), (6, 'dod_docs'), (7, 'dod_runbook'), (8, 'dod_perf_benchmark')
),
-- Each feature once per item (by its position in items) it is known for (has: true with it,
-- false without it). One select per item, not a cross join with the eight names and a CASE: a
-- plain projection of the followed features, which the engine computes once for the places
-- that read known.
known AS (
    SELECT 1 AS position, feature_id, sid, ratio, days, incidents, sev1, users, dod_acceptance AS has
    FROM followed WHERE dod_acceptance IS NOT NULL
    UNION ALL
    SELECT 2, feature_id, sid, ratio, days, incidents, sev1, users, dod_unit_tests
    FROM followed WHERE dod_unit_tests IS NOT NULL
    UNION ALL
    SELECT 3, feature_id, sid, ratio, days, incidents, sev1, users, dod_integration_tests
    FROM followed WHERE dod_integration_tests IS NOT NULL
    UNION ALL
    SELECT 4, feature_id, sid, ratio, days, incidents, sev1, users, dod_monitoring
    FROM followed WHERE dod_monitoring IS NOT NULL
    UNION ALL
    SELECT 5, feature_id, sid, ratio, days, incidents, sev1, users, dod_feature_flag
    FROM followed WHERE dod_feature_flag IS NOT NULL
    UNION ALL
    SELECT 6, feature_id, sid, ratio, days, incidents, sev1, users, dod_docs
    FROM followed WHERE dod_docs IS NOT NULL
    UNION ALL
    SELECT 7, feature_id, sid, ratio, days, incidents, sev1, users, dod_runbook
    FROM followed WHERE dod_runbook IS NOT NULL
    UNION ALL
    SELECT 8, feature_id, sid, ratio, days, incidents, sev1, users, dod_perf_benchmark
    FROM followed WHERE dod_perf_benchmark IS NOT NULL
),
strata AS (
    SELECT
        position,
        sid,
        CAST(sum(CASE WHEN has THEN incidents ELSE 0 END) AS DOUBLE) AS a,
        CAST(sum(CASE WHEN has THEN 0 ELSE incidents END) AS DOUBLE) AS b,
        CAST(sum(CASE WHEN has THEN sev1 ELSE 0 END) AS DOUBLE) AS a1,
        CAST(sum(CASE WHEN has THEN 0 ELSE sev1 END) AS DOUBLE) AS b1,
        sum(CASE WHEN has THEN days ELSE 0.0 END) AS t1,
        sum(CASE WHEN has THEN 0.0 ELSE days END) AS t0
    FROM known
    GROUP BY position, sid
),
mh AS (
    SELECT
        position,
        sum(a * t0 / (t0 + t1)) AS r,
        sum(b * t1 / (t0 + t1)) AS s,
        sum((a + b) * t1 * t0 / ((t0 + t1) * (t0 + t1))) AS v,
        sum(a1 * t0 / (t0 + t1)) AS r1,
        sum(b1 * t1 / (t0 + t1)) AS s1,
        sum(a + b) AS linked
    FROM strata
    WHERE t0 > 0 AND t1 > 0
    GROUP BY position
),
-- The variance of the log ratio as if features were independent units (the sandwich variance of
-- the Mantel-Haenszel estimating equation): each feature's incidents about its side's rate in its
-- stratum. It exceeds the Poisson variance when some features cause many incidents.
robust AS (
    SELECT
        k.position,
        sum(power(
            CASE
                WHEN k.has THEN (k.incidents - k.days * st.a / st.t1) * st.t0 / (st.t0 + st.t1)
                ELSE mh.r / NULLIF(mh.s, 0.0) * (k.incidents - k.days * st.b / st.t0) * st.t1 / (st.t0 + st.t1)
            END,
            2
        )) AS u
    FROM known k
    JOIN strata st ON st.position = k.position AND st.sid = k.sid
    JOIN mh ON mh.position = k.position
    WHERE st.t0 > 0 AND st.t1 > 0
    GROUP BY k.position
),
sides AS (
    SELECT
        position,
        count(CASE WHEN has THEN 1 END) AS features_with,
        count(CASE WHEN has THEN NULL ELSE 1 END) AS features_without,
        CAST(sum(CASE WHEN has THEN incidents ELSE 0 END) AS DOUBLE) AS incidents_with,
        CAST(sum(CASE WHEN has THEN 0 ELSE incidents END) AS DOUBLE) AS incidents_without,
        CAST(sum(CASE WHEN has THEN users ELSE 0 END) AS DOUBLE) AS users_with,
        CAST(sum(CASE WHEN has THEN 0 ELSE users END) AS DOUBLE) AS users_without,
        median(CASE WHEN has THEN ratio END) AS effort_ratio_with,
        median(CASE WHEN has THEN NULL ELSE ratio END) AS effort_ratio_without
    FROM known
    GROUP BY position
),
recovery AS (
    SELECT
        k.position,
        median(CASE WHEN k.has THEN c.hours END) AS mttr_hours_with,
        median(CASE WHEN k.has THEN NULL ELSE c.hours END) AS mttr_hours_without
    FROM known k
    JOIN caused c ON c.feature_id = k.feature_id
    GROUP BY k.position
),
rated AS (
    SELECT
        s.*,
        items.item,
        mh.r / NULLIF(mh.s, 0.0) AS incident_rate_ratio,
        exp(1.6448536269514722 * sqrt(greatest(
            mh.v / (NULLIF(mh.r, 0.0) * NULLIF(mh.s, 0.0)),
            robust.u / (NULLIF(mh.r, 0.0) * NULLIF(mh.r, 0.0))
        ))) AS spread,
        mh.r1 / NULLIF(mh.s1, 0.0) AS sev1_ratio,
        coalesce(mh.linked, 0.0) AS linked
    FROM sides s
    JOIN items ON items.position = s.position
    LEFT JOIN mh ON mh.position = s.position
    LEFT JOIN robust ON robust.position = s.position
)
SELECT
    r.item AS item,
    r.features_with AS features_with,
    r.features_without AS features_without,
    r.incidents_with / NULLIF(r.features_with, 0) AS incidents_per_feature_with,
    r.incidents_without / NULLIF(r.features_without, 0) AS incidents_per_feature_without,
    r.incident_rate_ratio AS incident_rate_ratio,
    r.incident_rate_ratio / r.spread AS rr_low,
    r.incident_rate_ratio * r.spread AS rr_high,
    r.sev1_ratio AS sev1_ratio,
    rec.mttr_hours_with AS mttr_hours_with,
    rec.mttr_hours_without AS mttr_hours_without,
    r.users_with / NULLIF(r.features_with, 0) AS users_affected_per_feature_with,
    r.users_without / NULLIF(r.features_without, 0) AS users_affected_per_feature_without,
    r.effort_ratio_with AS effort_ratio_with,
    r.effort_ratio_without AS effort_ratio_without,
    CASE
        WHEN r.features_with >= 30 AND r.features_without >= 30 AND r.linked >= 20
             AND r.spread * r.spread <= 3.0 THEN 'high'
        WHEN r.features_with >= 10 AND r.features_without >= 10 AND r.linked >= 5
             AND r.spread IS NOT NULL THEN 'medium'
        ELSE 'low'
    END AS confidence
FROM rated r
LEFT JOIN recovery rec ON rec.position = r.position
ORDER BY r.position
