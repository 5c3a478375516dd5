SELECT k, count(*) FROM t WHERE id > $1 GROUP BY k
