SELECT time_bucket(interval '15' minute, ts) AS b, count(*) FROM t GROUP BY 1
