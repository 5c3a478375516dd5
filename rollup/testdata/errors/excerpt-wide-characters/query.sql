SELECT "café", count(*) AS «n» FROM t GROUP BY 1 HAVING true
