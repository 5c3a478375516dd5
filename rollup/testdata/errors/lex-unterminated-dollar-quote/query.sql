SELECT k, count(*) FROM t WHERE s = $x$abc GROUP BY k
