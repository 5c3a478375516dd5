SELECT k, count(*) AS n FROM t GROUP BY k, n
