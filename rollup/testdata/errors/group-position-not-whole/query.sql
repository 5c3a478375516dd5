SELECT k, count(*) FROM t GROUP BY 1.0
