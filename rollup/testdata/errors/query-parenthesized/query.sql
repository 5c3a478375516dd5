(SELECT k, count(*) FROM t GROUP BY k)
