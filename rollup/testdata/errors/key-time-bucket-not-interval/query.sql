SELECT time_bucket('15 minuts', ts) AS b, count(*) FROM t GROUP BY 1
