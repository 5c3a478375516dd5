SELECT time_bucket('1 month 2 days', ts) AS b, count(*) FROM t GROUP BY 1
