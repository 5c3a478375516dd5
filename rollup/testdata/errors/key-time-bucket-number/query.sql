SELECT time_bucket(60, ts) AS b, count(*) FROM t GROUP BY 1
