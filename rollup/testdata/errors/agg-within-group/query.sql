SELECT k, percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p FROM t GROUP BY k
