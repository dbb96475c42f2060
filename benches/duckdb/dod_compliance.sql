SELECT
    coalesce(team, '(none)') AS team,
    count(*) AS features,
    avg(coalesce(dod_acceptance, false)::INT) AS dod_acceptance,
    avg(coalesce(dod_unit_tests, false)::INT) AS dod_unit_tests,
    avg(coalesce(dod_integration_tests, false)::INT) AS dod_integration_tests,
    avg(coalesce(dod_monitoring, false)::INT) AS dod_monitoring,
    avg(coalesce(dod_feature_flag, false)::INT) AS dod_feature_flag,
    avg(coalesce(dod_docs, false)::INT) AS dod_docs,
    avg(coalesce(dod_runbook, false)::INT) AS dod_runbook,
    avg(coalesce(dod_perf_benchmark, false)::INT) AS dod_perf_benchmark,
    avg(coalesce(dod_acceptance AND dod_unit_tests AND dod_integration_tests AND dod_monitoring
                 AND dod_feature_flag AND dod_docs AND dod_runbook AND dod_perf_benchmark, false)::INT) AS fully_done
FROM features
WHERE actual_weeks IS NOT NULL
  AND shipped_at > TIMESTAMPTZ '@START@' AND shipped_at <= TIMESTAMPTZ '@AS_OF@'
GROUP BY ALL
ORDER BY team
