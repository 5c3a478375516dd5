SELECT k, count(*) GROUP BY k
