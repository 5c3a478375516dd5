package sources

import (
	"context"
	"fmt"
	"strings"

	"github.com/mrengine/mr/mapreduce"
)

// forms lists the source URLs Open accepts, for its error messages.
const forms = "use sqlite:PATH, a PATH ending in .db, or postgres://USER@HOST/DB"

// Open returns the source a URL names (the --source flag):
//
//	sqlite:PATH, or a PATH ending in .db    an existing SQLite database
//	postgres://… or postgresql://…          a PostgreSQL database (OpenPostgres)
//
// ctx bounds connecting to a database server. The source is an io.Closer;
// close it when done.
func Open(ctx context.Context, url string) (mapreduce.Source, error) {
	scheme, rest, _ := strings.Cut(url, ":")
	switch {
	case scheme == "sqlite":
		return source(OpenSQLite(rest))
	case scheme == "postgres", scheme == "postgresql":
		return source(OpenPostgres(ctx, url))
	case strings.Contains(url, "://"):
		// Only the scheme is echoed: the rest may hold a password.
		return nil, fmt.Errorf("sources: unsupported source scheme %q: %s", scheme, forms)
	case strings.HasSuffix(url, ".db"):
		return source(OpenSQLite(url))
	default:
		// Not echoed: a key=value DSN, say, may hold a password.
		return nil, fmt.Errorf("sources: unsupported source: %s", forms)
	}
}

// source returns src as a Source, or nil if err is set: never a nil
// pointer in a non-nil interface.
func source[S mapreduce.Source](src S, err error) (mapreduce.Source, error) {
	if err != nil {
		return nil, err
	}
	return src, nil
}
