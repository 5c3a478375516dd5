SELECT k, count(*) FROM t WHERE s = 'abc GROUP BY k
