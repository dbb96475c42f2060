-- Does each team ship to the shared definition of done?
--
-- Shipped features in the window, one row per team ((none) for features without one): the
-- share of features with each definition-of-done item true (unknown counts as not done) and the
-- share with all eight true.
SELECT *
FROM (
    SELECT
        coalesce(team, '(none)') AS team,
        count(*) AS features,
        avg(CASE WHEN dod_acceptance THEN 1.0 ELSE 0.0 END) AS dod_acceptance,
        avg(CASE WHEN dod_unit_tests THEN 1.0 ELSE 0.0 END) AS dod_unit_tests,
        avg(CASE WHEN dod_integration_tests THEN 1.0 ELSE 0.0 END) AS dod_integration_tests,
        avg(CASE WHEN dod_monitoring THEN 1.0 ELSE 0.0 END) AS dod_monitoring,
        avg(CASE WHEN dod_feature_flag THEN 1.0 ELSE 0.0 END) AS dod_feature_flag,
        avg(CASE WHEN dod_docs THEN 1.0 ELSE 0.0 END) AS dod_docs,
        avg(CASE WHEN dod_runbook THEN 1.0 ELSE 0.0 END) AS dod_runbook,
        avg(CASE WHEN dod_perf_benchmark THEN 1.0 ELSE 0.0 END) AS dod_perf_benchmark,
        avg(
            CASE
                WHEN dod_acceptance AND dod_unit_tests AND dod_integration_tests
                    AND dod_monitoring AND dod_feature_flag AND dod_docs AND dod_runbook
                    AND dod_perf_benchmark
                THEN 1.0
                ELSE 0.0
            END
        ) AS fully_done
    FROM window_features
    GROUP BY coalesce(team, '(none)')
)
ORDER BY team
