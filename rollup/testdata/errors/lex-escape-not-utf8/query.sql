SELECT k, count(*) FROM t WHERE s = E'\xff' GROUP BY k
