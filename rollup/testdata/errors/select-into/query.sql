SELECT k, count(*) INTO totals FROM t GROUP BY k
