-- Which systems most need attention this month?
--
-- The monthly technical-health table: slowdown, delay and cost (slowdown_by_system, debt_cost)
-- beside incidents (incident_impact) for every system that has either. Counts are 0 where a
-- side is missing, the other columns null. tax, tax_low, tax_high and attributed_cost are the
-- attributed velocity tax and its cost (system_tax, debt_cost). deployments, change_failure_rate
-- with cfr_low and cfr_high, lead_time_hours and recovery_hours are the system's DORA keys
-- (delivery_performance; deployments 0 and the others null without production deployments in
-- the window). The costliest systems first.
SELECT *
FROM (
    SELECT
        coalesce(s.system, i.system) AS system,
        coalesce(s.features, 0) AS features,
        s.slowdown_ratio AS slowdown_ratio,
        s.total_delay_days AS total_delay_days,
        d.cost AS cost,
        coalesce(i.incidents, 0) AS incidents,
        coalesce(i.sev1, 0) AS sev1,
        i.mttr_hours AS mttr_hours,
        i.users_affected AS users_affected,
        i.debt_related_share AS debt_related_share,
        d.tax AS tax,
        d.tax_low AS tax_low,
        d.tax_high AS tax_high,
        d.attributed_cost AS attributed_cost,
        coalesce(p.deployments, 0) AS deployments,
        p.change_failure_rate AS change_failure_rate,
        p.cfr_low AS cfr_low,
        p.cfr_high AS cfr_high,
        p.lead_time_hours AS lead_time_hours,
        p.recovery_hours AS recovery_hours
    FROM slowdown_by_system s
    LEFT JOIN debt_cost d ON d.system = s.system
    FULL OUTER JOIN incident_impact i ON i.system = s.system
    LEFT JOIN delivery_performance p ON p.system = coalesce(s.system, i.system)
)
ORDER BY cost DESC NULLS LAST, system
