SELECT k AS n, count(*) AS n FROM t GROUP BY 1
