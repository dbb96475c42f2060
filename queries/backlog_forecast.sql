-- How long will each planned item really take, and which ones will debt slow down?
--
-- One row per backlog item, in priority order (items without a priority last, then by
-- item_id). p50_weeks and p85_weeks are the median and 85th percentile of the item's duration:
-- its estimate times the ratio the model of system_tax gives for its systems (the taxes combined
-- as the window chose, multiplied or the slowest) with the spread of the fitted features'
-- residuals and of the model's own uncertainty, over the analysis window. driving_system and
-- driving_tax: the touched system that adds the most, with its system_tax tax (null when no
-- touched system has shipped features in the window: the item counts at the common level).
-- debt_weeks: how much of p50_weeks the taxes add beyond an item whose systems are all at the
-- common level of the model (never below 0). flag: 'debt: <driving_system> <tax>x' when the taxes
-- add at least 50% to the item, else 'architecture first' when p85_weeks is at least 3 x the
-- estimate, else null; item_forecast(m, systems, estimated_weeks, debt_share, architecture_ratio)
-- takes other thresholds (`debtlens plan --debt-share --architecture-ratio`). All null when the
-- window has no shipped feature with estimated and actual weeks above 0. cost_of_delay_per_week
-- is the item's (null when product gave none); cd3 = cost_of_delay_per_week / p50_weeks, the
-- value lost per week of delay for each week the item takes (Reinertsen's CD3: do the highest
-- first); cd3_without_debt = cost_of_delay_per_week / (p50_weeks - debt_weeks), the same if the
-- taxes added nothing, so an item whose cd3 falls well below its cd3_without_debt is one the debt
-- pushes down the order. The method is in the README.
WITH model AS (
    SELECT tax_model(systems, estimated_weeks, actual_weeks) AS m
    FROM window_features
),
forecast AS (
    SELECT b.item_id, b.title, b.team, b.systems, b.estimated_weeks, b.priority, b.cost_of_delay_per_week,
           item_forecast(model.m, b.systems, b.estimated_weeks) AS f
    FROM backlog b
    CROSS JOIN model
)
SELECT
    item_id,
    title,
    team,
    systems,
    estimated_weeks,
    f['p50_weeks'] AS p50_weeks,
    f['p85_weeks'] AS p85_weeks,
    f['driving_system'] AS driving_system,
    f['driving_tax'] AS driving_tax,
    f['debt_weeks'] AS debt_weeks,
    f['flag'] AS flag,
    cost_of_delay_per_week,
    cost_of_delay_per_week / NULLIF(f['p50_weeks'], 0.0) AS cd3,
    cost_of_delay_per_week / NULLIF(f['p50_weeks'] - f['debt_weeks'], 0.0) AS cd3_without_debt
FROM forecast
ORDER BY priority NULLS LAST, item_id
