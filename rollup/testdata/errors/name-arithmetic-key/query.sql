SELECT k, a + b, count(*) FROM t GROUP BY 1, 2
