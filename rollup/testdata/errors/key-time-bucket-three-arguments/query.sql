SELECT time_bucket('1 day', ts, 'Europe/Paris') AS b, count(*) FROM t GROUP BY 1
