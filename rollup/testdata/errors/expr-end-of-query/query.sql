SELECT k, count(*) FROM t WHERE x >
