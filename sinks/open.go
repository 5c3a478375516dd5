package sinks

import (
	"context"
	"fmt"
	"strings"

	"github.com/mrengine/mr/mapreduce"
)

// forms lists the sink URLs Open accepts, for its error messages.
const forms = "use sqlite:PATH, a PATH ending in .db, or postgres://USER@HOST/DB"

// Open returns the sink a URL names (the --sink flag):
//
//	sqlite:PATH, or a PATH ending in .db    an SQLite database, created if missing
//	postgres://… or postgresql://…          a PostgreSQL database (see Postgres)
//
// ctx bounds connecting to a database server. The sink is an io.Closer;
// close it when done.
func Open(ctx context.Context, url string) (mapreduce.Sink, error) {
	scheme, rest, _ := strings.Cut(url, ":")
	switch {
	case scheme == "sqlite":
		return sink(OpenSQLite(rest))
	case scheme == "postgres", scheme == "postgresql":
		return sink(OpenPostgres(ctx, url))
	case strings.Contains(url, "://"):
		// Only the scheme is echoed: the rest may hold a password.
		return nil, fmt.Errorf("sinks: unsupported sink scheme %q: %s", scheme, forms)
	case strings.HasSuffix(url, ".db"):
		return sink(OpenSQLite(url))
	default:
		// Not echoed: a key=value DSN, say, may hold a password.
		return nil, fmt.Errorf("sinks: unsupported sink: %s", forms)
	}
}

// sink returns s as a Sink, or nil if err is set: never a nil pointer in a
// non-nil interface.
func sink[S mapreduce.Sink](s S, err error) (mapreduce.Sink, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
