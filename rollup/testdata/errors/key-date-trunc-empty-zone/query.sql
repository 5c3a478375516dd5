SELECT date_trunc('day', ts, '') AS day, count(*) FROM t GROUP BY 1
