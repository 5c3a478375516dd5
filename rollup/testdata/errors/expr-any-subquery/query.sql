SELECT count(*) FROM t WHERE x = ANY (SELECT id FROM u)
