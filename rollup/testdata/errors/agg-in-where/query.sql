SELECT k, count(*) FROM t WHERE sum(x) > 0 GROUP BY k
