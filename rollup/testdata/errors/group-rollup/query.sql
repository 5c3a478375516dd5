SELECT a, b, count(*) FROM t GROUP BY ROLLUP (a, b)
