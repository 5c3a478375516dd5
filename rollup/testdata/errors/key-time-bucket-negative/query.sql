SELECT time_bucket('-1 hour', ts) AS b, count(*) FROM t GROUP BY 1
