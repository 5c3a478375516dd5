package sources

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mrengine/mr/mapreduce"
)

// forms lists the source URLs Open accepts, for its error messages.
const forms = "use sqlite:PATH, a PATH ending in .db, or postgres://USER@HOST/DB"

// Open returns the source a URL names (the --source flag):
//
//	sqlite:PATH, or a PATH ending in .db    an existing SQLite database
//	postgres://… or postgresql://…          PostgreSQL (not yet available)
//
// ctx bounds connecting to a database server.
func Open(ctx context.Context, url string) (mapreduce.Source, error) {
	scheme, rest, _ := strings.Cut(url, ":")
	switch {
	case scheme == "sqlite":
		return OpenSQLite(rest)
	case scheme == "postgres", scheme == "postgresql":
		return nil, errors.New("sources: postgres sources arrive soon; use sqlite:PATH for now")
	case strings.Contains(url, "://"):
		// Only the scheme is echoed: the rest may hold a password.
		return nil, fmt.Errorf("sources: unsupported source scheme %q: %s", scheme, forms)
	case strings.HasSuffix(url, ".db"):
		return OpenSQLite(url)
	default:
		return nil, fmt.Errorf("sources: unsupported source %q: %s", url, forms)
	}
}
