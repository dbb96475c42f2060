-- Which system really slows features down, and how sure are we?
--
-- Shipped features in the window, one row per touched system. tax is the expected actual /
-- estimated ratio of a feature that touches only this system (the unit of slowdown_ratio),
-- estimated jointly from every feature so that a system is not blamed for the systems it
-- travels with: ln(actual / estimated) = c + the sum of beta_s over the touched systems, a
-- ridge fit whose weight the data choose (empirical Bayes), so a sparse system is pulled towards
-- the common level; tax = exp(c + beta_s) x the mean of exp(residual) (smearing). tax_low and
-- tax_high are its 90% interval (posterior, Student's t); naive_ratio is slowdown_ratio, the
-- plain average, side by side. attributed_extra_weeks shares each feature's actual - estimated
-- among its systems in proportion to their log tax (systems at or below 1x take none; equally
-- when none is above 1x), so the column adds up to the window's extra weeks. Features whose
-- actual or estimated weeks are missing or not above 0 are left out of the fit (they still
-- count in features, naive_ratio and attributed_extra_weeks); `debtlens view system_tax` says
-- how many. confidence: high with at least 30 features and tax_high at most 1.25 x tax_low;
-- medium with at least 10 features and at most 1.6 x; low otherwise. Computed in the engine by
-- velocity_tax(); the method is in the README.
SELECT
    t['system'] AS system,
    t['features'] AS features,
    t['solo_features'] AS solo_features,
    t['tax'] AS tax,
    t['tax_low'] AS tax_low,
    t['tax_high'] AS tax_high,
    t['naive_ratio'] AS naive_ratio,
    t['attributed_extra_weeks'] AS attributed_extra_weeks,
    t['confidence'] AS confidence
FROM (
    SELECT unnest(velocity_tax(systems, estimated_weeks, actual_weeks)) AS t
    FROM window_features
)
ORDER BY tax DESC NULLS LAST, system
