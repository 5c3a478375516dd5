SELECT k, avg(x)::int AS a FROM t GROUP BY k
