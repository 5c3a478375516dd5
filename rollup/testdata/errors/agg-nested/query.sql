SELECT k, sum(max(x)) AS s FROM t GROUP BY k
