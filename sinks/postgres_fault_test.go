package sinks_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
)

// TestPostgres_Restart restarts the server between two Applies. It must
// not run in parallel: the restart breaks every connection of the binary.
func TestPostgres_Restart(t *testing.T) {
	b := setupPostgres(t)
	if err := b.sink.Prepare(t.Context(), rollup); err != nil {
		t.Fatal(err)
	}
	if err := b.sink.Apply(t.Context(), rollup, "c1", 0, &tableRows{rows: rollupRows(0, 1000, 1)}); err != nil {
		t.Fatal(err)
	}
	pgtest.Restart(t)
	if err := b.sink.Apply(t.Context(), rollup, "c1", 1, &tableRows{rows: rollupRows(1000, 1000, 1)}); err != nil {
		t.Fatal(err)
	}
	committed, err := b.sink.Committed(t.Context(), "c1")
	if err != nil || fmt.Sprint(committed) != "[0 1]" {
		t.Errorf("Committed = %v, %v; want [0 1]", committed, err)
	}
	if got := b.query(t, `SELECT count(*) FROM daily_rollup`); fmt.Sprint(got) != "[[2000]]" {
		t.Errorf("count = %v, want 2000", got)
	}
}

// faultProxy forwards TCP connections to a server, and can break them all
// and turn new ones away, to inject connection faults.
type faultProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     struct {
		sync.Mutex
		conns  []net.Conn
		refuse bool
	}
}

func newFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.breakAll()
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.mu.refuse
		p.mu.Unlock()
		if refuse {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.mu.conns = append(p.mu.conns, client, server)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(server, client) })
		p.wg.Go(func() { pipe(client, server) })
	}
}

// breakAll closes every connection open through the proxy.
func (p *faultProxy) breakAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.mu.conns {
		c.Close()
	}
	p.mu.conns = nil
}

// setRefuse makes the proxy close new connections at once, or stop doing so.
func (p *faultProxy) setRefuse(refuse bool) {
	p.mu.Lock()
	p.mu.refuse = refuse
	p.mu.Unlock()
}

// proxied returns dsn with its host replaced by a new faultProxy to it.
func proxied(t testing.TB, dsn string) (string, *faultProxy) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" || u.Port() == "" {
		t.Skipf("needs a postgres:// URL with a TCP host to proxy, got %v", err)
	}
	p := newFaultProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	return u.String(), p
}

func TestPostgres_ConnectionFaults(t *testing.T) {
	t.Parallel()

	setup := func(t *testing.T) (*pgBundle, *faultProxy) {
		t.Helper()
		b := setupPostgres(t)
		dsn, p := proxied(t, b.dsn)
		b.sink = openPostgres(t, dsn)
		b.sink.RetryBudget = 5 * time.Second
		if err := b.sink.Prepare(t.Context(), rollup); err != nil {
			t.Fatal(err)
		}
		return b, p
	}

	t.Run("BeforeRowsAreRead", func(t *testing.T) {
		t.Parallel()
		b, p := setup(t)
		p.breakAll()
		p.setRefuse(true)
		time.AfterFunc(300*time.Millisecond, func() { p.setRefuse(false) })
		if err := b.sink.Apply(t.Context(), rollup, "c1", 0, &tableRows{rows: rollupRows(0, 1000, 1)}); err != nil {
			t.Fatal(err)
		}
		if got := b.query(t, `SELECT count(*) FROM daily_rollup`); fmt.Sprint(got) != "[[1000]]" {
			t.Errorf("count = %v, want 1000", got)
		}
	})

	t.Run("AfterRowsAreRead", func(t *testing.T) {
		t.Parallel()
		b, p := setup(t)
		rows := &failingRows{tableRows: tableRows{rows: rollupRows(0, 20000, 1)}, failAt: 10000, hook: p.breakAll}
		err := b.sink.Apply(t.Context(), rollup, "c1", 0, rows)
		want := fmt.Sprintf(`sinks: apply bucket 0 of commit "c1" to table "daily_rollup" in %s: `+
			`the connection failed after the bucket's rows were read, which cannot be read again, so the bucket was not applied: `, b.sink)
		if !pg.Transient(err) || !errors.Is(err, mapreduce.ErrNotApplied) || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("Apply error:\ngot  %v\nwant one starting %s", err, want)
		}
		if got := b.query(t, `SELECT count(*) FROM daily_rollup`); fmt.Sprint(got) != "[[0]]" {
			t.Errorf("count = %v, want 0", got)
		}
		if got := b.query(t, `SELECT count(*) FROM mr_bucket_commits`); fmt.Sprint(got) != "[[0]]" {
			t.Errorf("commit records = %v, want 0", got)
		}
		// Running again resumes.
		if err := b.sink.Apply(t.Context(), rollup, "c1", 0, &tableRows{rows: rollupRows(0, 20000, 1)}); err != nil {
			t.Fatal(err)
		}
		if got := b.query(t, `SELECT count(*) FROM daily_rollup`); fmt.Sprint(got) != "[[20000]]" {
			t.Errorf("count = %v, want 20000", got)
		}
	})

	t.Run("BudgetSpent", func(t *testing.T) {
		t.Parallel()
		dsn, p := proxied(t, pgtest.PasswordDSN(t, pgtest.RolePassword))
		sink := openPostgres(t, dsn)
		sink.RetryBudget = 500 * time.Millisecond
		p.breakAll()
		p.setRefuse(true)
		began := time.Now()
		_, err := sink.Committed(t.Context(), "c1")
		if d := time.Since(began); d > 2*time.Second {
			t.Errorf("Committed took %s with a retry budget of 500ms", d)
		}
		want := fmt.Sprintf(`sinks: read the commits of "c1" in postgres://%s@%s/postgres?options=`,
			pgtest.PasswordRole, p.ln.Addr())
		var ue *sinks.UnavailableError
		if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), want) ||
			!strings.Contains(err.Error(), fmt.Sprintf(`: PostgreSQL at %s (database "postgres") still unreachable after `, p.ln.Addr())) ||
			!strings.HasSuffix(err.Error(), "; the run can be resumed: run the same command again once the server is back") {
			t.Errorf("Committed error:\ngot  %v\nwant one starting %s", err, want)
		} else if ue.Server != p.ln.Addr().String() || ue.Database != "postgres" || ue.Attempts < 2 || ue.Err == nil {
			t.Errorf("Committed error: %+v", ue)
		}
		if strings.Contains(err.Error(), pgtest.RolePassword) {
			t.Errorf("error shows the password: %v", err)
		}
	})
}
