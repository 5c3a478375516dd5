SELECT k, sum(x => 1) AS s FROM t GROUP BY k
