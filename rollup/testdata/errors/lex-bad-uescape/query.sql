SELECT k, count(*) FROM t WHERE s = U&'x' UESCAPE 'a' GROUP BY k
