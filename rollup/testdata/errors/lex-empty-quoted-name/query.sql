SELECT "", count(*) FROM t GROUP BY 1
