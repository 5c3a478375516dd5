SELECT k, count(*) FROM t WHERE select = 1 GROUP BY k
