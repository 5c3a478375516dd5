SELECT k, count(*) FROM t WHERE a = {1} GROUP BY k
