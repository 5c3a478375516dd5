SELECT k, sum(x) + (a || 'b') AS s FROM t GROUP BY k
