SELECT k, sum(x ORDER BY ts) AS s FROM t GROUP BY k
