SELECT k, sum(*) AS s FROM t GROUP BY k
