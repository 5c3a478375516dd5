SELECT k, count(*) FROM t WHERE s = U&'\zzzz' GROUP BY k
