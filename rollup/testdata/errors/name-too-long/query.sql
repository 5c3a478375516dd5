SELECT k, count(*) AS a_name_that_is_longer_than_sixty_three_bytes_which_postgres_cuts FROM t GROUP BY k
