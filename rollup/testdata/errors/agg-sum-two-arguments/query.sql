SELECT k, sum(x, y) AS s FROM t GROUP BY k
