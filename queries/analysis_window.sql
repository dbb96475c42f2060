-- Which analysis window are the windowed views using?
--
-- One row: the exclusive start, the inclusive end (as_of) and the length in days of the window
-- (as_of - window_days, as_of]. Set it with --as-of and --window-days, or \set in the shell.
SELECT
    window_start() AS window_start,
    window_end() AS as_of,
    window_days() AS window_days
