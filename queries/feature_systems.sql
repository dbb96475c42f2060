-- Which systems did each feature touch?
--
-- One row per (feature, system): features with systems unnested, every other features column
-- alongside. All features, shipped or not. Not windowed.
SELECT
    feature_id,
    unnest(systems) AS system,
    title,
    team,
    work_type,
    estimated_weeks,
    actual_weeks,
    delay_days,
    delay_reasons,
    started_at,
    shipped_at,
    dod_acceptance,
    dod_unit_tests,
    dod_integration_tests,
    dod_monitoring,
    dod_feature_flag,
    dod_docs,
    dod_runbook,
    dod_perf_benchmark
FROM features
