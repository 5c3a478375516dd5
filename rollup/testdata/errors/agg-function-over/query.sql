SELECT k, round(avg(x), 2) AS a FROM t GROUP BY k
