SELECT a, b, count(*) FROM t GROUP BY CUBE (a, b)
