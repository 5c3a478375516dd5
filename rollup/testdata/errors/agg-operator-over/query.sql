SELECT k, sum(x) % 7 AS m FROM t GROUP BY k
