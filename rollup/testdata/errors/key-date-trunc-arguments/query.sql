SELECT date_trunc('month') AS month, count(*) FROM t GROUP BY 1
