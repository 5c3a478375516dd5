SELECT k, count(*) FROM t GROUP BY k WHERE x > 1
