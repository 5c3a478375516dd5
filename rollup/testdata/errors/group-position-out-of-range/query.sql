SELECT k, count(*) FROM t GROUP BY 3
