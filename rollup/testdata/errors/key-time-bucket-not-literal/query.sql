SELECT time_bucket(width, ts) AS b, count(*) FROM t GROUP BY 1
