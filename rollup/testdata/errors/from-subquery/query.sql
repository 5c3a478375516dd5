SELECT k, count(*) FROM (SELECT k FROM t) s GROUP BY k
