SELECT k, count(*) FROM t WHERE s = ÿ GROUP BY k
