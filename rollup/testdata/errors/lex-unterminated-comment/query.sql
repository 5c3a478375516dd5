SELECT k, count(*) /* rows FROM t GROUP BY k
