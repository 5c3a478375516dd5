package pg_test

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/redact"
)

func TestWithoutSecrets(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, in, want string }{
		{"UserInfo", "postgres://user:secret@host:5432/db?sslmode=disable", "postgres://user@host:5432/db?sslmode=disable"},
		{"Parameters", "postgres://user@host/db?password=secret&sslpassword=s2&sslmode=disable", "postgres://user@host/db?sslmode=disable"},
		{"NoPassword", "postgres://host/db", "postgres://host/db"},
		{"QueryAsWritten", "postgres://u:pw@host/db?options=-c%20search_path%3Ds", "postgres://u@host/db?options=-c%20search_path%3Ds"},
		{"SpacesStayEncoded", "postgres://host/db?password=pw&options=-c%20search_path%3Ds", "postgres://host/db?options=-c%20search_path%3Ds"},
		{"KeyValue", "host=h password=secret dbname=db", "host=h  dbname=db"},
		{"KeyValueQuoted", `host=h password='se cr\'et' sslpassword = x dbname=db`, "host=h   dbname=db"},
		{"KeyValueNone", "host=h dbname=db", "host=h dbname=db"},
		{"SQLite", "sqlite:events.db", "sqlite:events.db"},
		{"Empty", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := pg.WithoutSecrets(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("WithoutSecrets(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := pg.WithoutSecrets("host='h password=secret"); err == nil {
		t.Error("WithoutSecrets of a DSN that does not parse: no error")
	}
	if _, err := pg.WithoutSecrets("postgres://mr:hunter2@localhost:port/db"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("WithoutSecrets of a URL that does not parse: %v", err)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, in, want string
		secret         string // must not be in the result
	}{
		{"UserInfo", "postgres://user:secret@host/db", "postgres://user:xxxxx@host/db", "secret"},
		{"UserInfoKeepsQuery", "postgres://user:secret@host:5432/db?sslmode=disable&pool_max_conns=3",
			"postgres://user:xxxxx@host:5432/db?sslmode=disable&pool_max_conns=3", "secret"},
		{"EscapedUserInfo", "postgresql://user:s%40cr%2Ft@host/db", "postgresql://user:xxxxx@host/db", "s%40cr"},
		{"PasswordParameter", "postgres://user@host/db?password=secret&sslmode=disable",
			"postgres://user@host/db?password=xxxxx&sslmode=disable", "secret"},
		{"EscapedPasswordKey", "postgres://user@host/db?pass%77ord=secret", "postgres://user@host/db?pass%77ord=xxxxx", "secret"},
		{"SSLPassword", "postgres://user@host/db?sslkey=k.pem&sslpassword=secret", "postgres://user@host/db?sslkey=k.pem&sslpassword=xxxxx", "secret"},
		{"NoPassword", "postgres://host/db", "postgres://host/db", ""},
		{"OtherScheme", "mysql://alice:s3cret@127.0.0.1:1/db", "mysql://alice:xxxxx@127.0.0.1:1/db", "s3cret"},
		{"UnparsableURL", "postgres://mr:hunter2@localhost:port/mrdb", "postgres://…", "hunter2"},
		{"UnparsableURLSlash", "postgres://mr:a/b@host/db", "postgres://…", "a/b"},
		{"KeyValue", "host=h password=secret dbname=db", "host=h password=xxxxx dbname=db", "secret"},
		{"KeyValueQuoted", `host=h password='se cr\'et' dbname=db`, "host=h password=xxxxx dbname=db", "cr"},
		{"KeyValueSpaces", "host=h password = secret\tdbname=db", "host=h password = xxxxx\tdbname=db", "secret"},
		{"KeyValueEscaped", `password=se\ cret host=h`, "password=xxxxx host=h", "cret"},
		{"KeyValueLast", "host=h password=", "host=h password=xxxxx", ""},
		{"KeyValueUnterminated", "host=h password='se cret", "host=h password=xxxxx …", "cret"},
		{"KeyValueBrokenBefore", "host='h password=secret", "host='h password=xxxxx …", "secret"},
		{"SQLiteURL", "sqlite:events.db", "sqlite:events.db", ""},
		{"Path", "/tmp/events.db", "/tmp/events.db", ""},
		{"Empty", "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := pg.Redact(tt.in)
			if got != tt.want || tt.secret != "" && strings.Contains(got, tt.secret) {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, dsn string
		want      []string // each must be among the secrets
	}{
		{"UserInfo", "postgres://u:p%40ss@h/db", []string{"p@ss"}},
		{"Parameters", "postgres://u@h/db?password=a%20b&sslpassword=k", []string{"a b", "k"}},
		{"UnparsableURL", "postgres://mr:hunter2@localhost:port/mrdb", []string{"hunter2"}},
		{"UnparsableURLSlash", "postgres://mr:a/b@host:x/db", []string{"a/b"}},
		{"UnparsableURLParameter", "postgres://mr@host:x/db?password=hunter2", []string{"hunter2"}},
		{"KeyValue", `host=h password='a \'b' sslpassword=k`, []string{"a 'b", "k"}},
		{"KeyValueUnterminated", "host=h password='abc def", []string{"abc def"}},
		{"Path", "/tmp/events.db", nil},
		{"SQLite", "sqlite:/tmp/events.db", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := pg.Secrets(tt.dsn)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("Secrets(%q) = %q, want %q among them", tt.dsn, got, w)
				}
			}
			if tt.want == nil && len(got) > 0 {
				t.Errorf("Secrets(%q) = %q, want none", tt.dsn, got)
			}
		})
	}
}

// Passwords that do not stand in the DSN, but that pgx takes from the
// environment or ~/.pgpass, are secrets too.
func TestSecrets_Resolved(t *testing.T) {
	t.Setenv("PGPASSWORD", "from-env")
	if got := pg.Secrets("host=h user=u dbname=d"); !slices.Contains(got, "from-env") {
		t.Errorf("Secrets with PGPASSWORD = %q", got)
	}
	t.Setenv("PGPASSWORD", "")
	passfile := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(passfile, []byte("h:5432:d:u:from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", passfile)
	if got := pg.Secrets("postgres://u@h/d"); !slices.Contains(got, "from-file") {
		t.Errorf("Secrets with a passfile = %q", got)
	}
}

// Scrub is redact.Error (whose tests cover the forms a secret takes), fed
// with Secrets.
func TestScrub(t *testing.T) {
	t.Parallel()
	const secret = "s3 cr/t"
	for _, dsn := range []string{
		"host=h password='" + secret + "'",
		"postgres://u:" + url.PathEscape(secret) + "@h/db",
		"postgres://u@h/db?sslpassword=" + url.QueryEscape(secret),
	} {
		err := fmt.Errorf("cannot use %s: %w", dsn, io.EOF)
		got := redact.Error(err, pg.Secrets(dsn)...)
		if strings.Contains(got.Error(), "cr/t") || !strings.Contains(got.Error(), "xxxxx") || !errors.Is(got, io.EOF) {
			t.Errorf("Scrub(%s) = %q, want the secret masked and io.EOF kept", dsn, got)
		}
	}
}

// name parses dsn as Open does and returns its Name.
func name(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pg.Parse(dsn, 0)
	if err != nil {
		t.Fatalf("Parse(%s): %v", pg.Redact(dsn), err)
	}
	return pg.Name(&cfg.ConnConfig.Config)
}

func TestName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		want  string
		forms []string // each names the database want names
	}{
		{"postgres://mr@db.example:5432/app", []string{
			"postgres://mr:pw@db.example:5432/app",
			"postgres://mr:other@db.example/app?pool_max_conns=3&application_name=x&connect_timeout=5&sslmode=disable",
			"postgresql://mr@db.example/app?password=pw&pool_min_conns=1&sslmode=require",
			"host=db.example port=5432 user=mr password=pw dbname=app pool_max_conns=2",
			"  dbname = app\tuser=mr host=db.example sslmode=prefer  ",
		}},
		{"postgres://mr@db.example:5432/app?search_path=s1", []string{
			"postgres://mr@db.example/app?search_path=s1",
			"host=db.example user=mr dbname=app search_path=s1 application_name=y",
		}},
		{"postgres://mr@db.example:5432/app?search_path=s2", []string{"postgres://mr@db.example/app?search_path=s2"}},
		{"postgres://mr@db.example:5432/app?options=-c%20search_path%3Ds1", []string{
			"postgres://mr@db.example/app?options=-c%20search_path%3Ds1",
			"host=db.example user=mr dbname=app options='-c search_path=s1'",
		}},
		{"postgres://mr@/app?host=/run/pg&port=5433", []string{
			"host=/run/pg port=5433 user=mr dbname=app",
			"postgres://mr@%2Frun%2Fpg:5433/app",
			"postgres://mr@/app?host=/run/pg&port=5433",
		}},
		{"postgres://mr@a:1,b:2/app", []string{"postgres://mr@a:1,b:2/app", "host=a,b port=1,2 user=mr dbname=app"}},
		{"postgres://mr@[::1]:5432/app", []string{"postgres://mr@[::1]/app", "host=::1 user=mr dbname=app"}},
		{"postgres://us%20er@h:5432/a%2Fb", []string{"host=h user='us er' dbname=a/b"}},
	} {
		for _, dsn := range tt.forms {
			got := name(t, dsn)
			if got != tt.want {
				t.Errorf("Name of %s = %s, want %s", dsn, got, tt.want)
			}
			if again := name(t, got); again != got {
				t.Errorf("Name of its own name %s = %s", got, again)
			}
		}
	}
}

// The PG* environment variables fill in what a DSN leaves out, as for psql.
func TestName_Environment(t *testing.T) {
	t.Setenv("PGHOST", "env.example")
	t.Setenv("PGPORT", "6543")
	t.Setenv("PGUSER", "envuser")
	t.Setenv("PGDATABASE", "envdb")
	if got, want := name(t, ""), "postgres://envuser@env.example:6543/envdb"; got != want {
		t.Errorf("Name of the empty DSN = %s, want %s", got, want)
	}
	if got, want := name(t, "dbname=app"), "postgres://envuser@env.example:6543/app"; got != want {
		t.Errorf("Name of dbname=app = %s, want %s", got, want)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	cfg, err := pg.Parse("postgres://u@h/db", 7)
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.ConnConfig
	if cfg.MaxConns != 7 || cc.ConnectTimeout != pg.ConnectTimeout || cc.RuntimeParams["application_name"] != "mr" ||
		cc.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement {
		t.Errorf("defaults: max conns %d, connect timeout %s, application_name %q, exec mode %v",
			cfg.MaxConns, cc.ConnectTimeout, cc.RuntimeParams["application_name"], cc.DefaultQueryExecMode)
	}
	cfg, err = pg.Parse("host=h pool_max_conns=3 connect_timeout=2 application_name=mine", 7)
	if err != nil {
		t.Fatal(err)
	}
	cc = cfg.ConnConfig
	if cfg.MaxConns != 3 || cc.ConnectTimeout != 2*time.Second || cc.RuntimeParams["application_name"] != "mine" {
		t.Errorf("overrides: max conns %d, connect timeout %s, application_name %q",
			cfg.MaxConns, cc.ConnectTimeout, cc.RuntimeParams["application_name"])
	}

	for _, dsn := range []string{"postgres://mr:hunter2@localhost:port/mrdb", "host=h password=hunter2 port=x", "postgres://mr:hunter2@h/db?pool_max_conns=0"} {
		_, err := pg.Parse(dsn, 0)
		var pce *pgconn.ParseConfigError
		if err == nil || strings.Contains(err.Error(), "hunter2") || !errors.As(err, &pce) ||
			!strings.HasSuffix(err.Error(), "(write postgres://USER:PASSWORD@HOST:PORT/DATABASE or host=HOST port=PORT dbname=DATABASE)") {
			t.Errorf("Parse(%s): %v", pg.Redact(dsn), err)
		}
	}
}
