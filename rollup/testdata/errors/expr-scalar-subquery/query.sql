SELECT k, sum((SELECT max(x) FROM u)) AS s FROM t GROUP BY k
