SELECT k, count(*) FROM t WHERE a = $ GROUP BY k
