SELECT k, corr(x) AS r FROM t GROUP BY k
