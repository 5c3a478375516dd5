SELECT k, percentile_disc(x, 0.5) AS p FROM t GROUP BY k
