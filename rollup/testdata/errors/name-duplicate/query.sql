SELECT k, sum(x), sum(y) FROM t GROUP BY k
