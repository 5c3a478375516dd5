SELECT time_bucket('300000000 years', ts) AS b, count(*) FROM t GROUP BY 1
