SELECT date_trunc(unit, created_at) AS month, count(*) FROM t GROUP BY 1
