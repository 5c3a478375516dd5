package sources_test

import (
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/sources"
)

// TestPostgres_Restart restarts the server between two chunks of a read:
// the pool's connections all break, and the next calls retry on new ones.
// It does not call t.Parallel, so no other test runs during the restart.
func TestPostgres_Restart(t *testing.T) {
	bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY, v text)`,
		`INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 5000) i`)
	in := mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"v"}}
	all := partition.Range{Lo: 1, Hi: 5001}
	b := mapreduce.NewBatch(in.Columns)
	if err := bundle.src.ReadChunk(t.Context(), in, all, 1000, b); err != nil || b.Len() != 1000 {
		t.Fatalf("first chunk: %d rows, %v", b.Len(), err)
	}

	pgtest.Restart(t)

	rest := readAll(t, bundle.src, in, partition.Range{Lo: b.Last() + 1, Hi: all.Hi}, 1000)
	if len(rest) != 4000 || rest[0] != 1001 || rest[len(rest)-1] != 5000 {
		t.Errorf("after the restart read %d rows, from %d to %d; want 4000 from 1001 to 5000", len(rest), rest[0], rest[len(rest)-1])
	}

	pgtest.Restart(t)

	if _, err := bundle.src.Describe(t.Context(), in); err != nil {
		t.Errorf("Describe after a restart: %v", err)
	}
	pgtest.Restart(t)
	if _, err := bundle.src.Split(t.Context(), in, mapreduce.TableInfo{Min: 1, Max: 5000, Rows: 5000}, 4); err != nil {
		t.Errorf("Split after a restart: %v", err)
	}
}

// proxy forwards TCP connections to a PostgreSQL server, so that a test
// can break them or take the "server" down without disturbing the others.
type proxy struct {
	ln     net.Listener
	target string
	conns  atomic.Int64 // connections accepted
	// cut, when not negative, is how many more bytes from the server get
	// through before the proxy breaks every connection (once).
	cut atomic.Int64

	mu   sync.Mutex
	open map[net.Conn]struct{}
	wg   sync.WaitGroup
}

// startProxy starts a proxy to target (host:port), closed in t.Cleanup.
func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, open: map[net.Conn]struct{}{}}
	p.cut.Store(-1)
	p.wg.Go(p.serve)
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		p.wg.Go(func() { p.handle(client) })
	}
}

func (p *proxy) track(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		p.open[c] = struct{}{}
	}
}

// closeAll breaks every connection.
func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.open {
		c.Close()
		delete(p.open, c)
	}
}

func (p *proxy) handle(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, server)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(server, client)
		server.Close()
	}()
	buf := make([]byte, 16<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if rem := p.cut.Load(); rem >= 0 && p.cut.Add(-int64(n)) < 0 {
				p.cut.Store(-1)
				client.Write(buf[:rem])
				p.closeAll()
				break
			}
			if _, err := client.Write(buf[:n]); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	client.Close()
	server.Close()
	<-done
}

// Close stops accepting, breaks every connection and waits for its
// goroutines.
func (p *proxy) Close() {
	p.ln.Close()
	p.closeAll()
	p.wg.Wait()
}

// proxied returns a DSN of a fresh schema whose connections go through a
// new proxy.
func proxied(t *testing.T) (*pgBundle, *proxy, string) {
	t.Helper()
	bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY, v text)`,
		`INSERT INTO t SELECT i, repeat('v', 100) FROM generate_series(1, 20000) i`)
	u, err := url.Parse(bundle.dsn)
	if err != nil || u.Host == "" {
		t.Skipf("the proxy tests need a postgres:// URL with a host, not %s", bundle.src)
	}
	p := startProxy(t, u.Host)
	u.Host = p.Addr()
	return bundle, p, u.String()
}

// A connection that breaks while the rows of a chunk arrive: the chunk
// still holds each row once, in order.
func TestPostgres_ReadChunkBrokenConnection(t *testing.T) {
	t.Parallel()
	_, p, dsn := proxied(t)
	src := openPostgres(t, dsn)
	in := mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"v"}}
	b := mapreduce.NewBatch(in.Columns)
	p.cut.Store(500 << 10) // about a quarter of the chunk's rows
	if err := src.ReadChunk(t.Context(), in, partition.Range{Lo: 1, Hi: 20001}, 15000, b); err != nil {
		t.Fatal(err)
	}
	if p.cut.Load() != -1 || p.conns.Load() < 2 {
		t.Fatalf("the proxy did not break the connection (%d connections)", p.conns.Load())
	}
	if b.Len() != 15000 {
		t.Fatalf("read %d rows, want 15000", b.Len())
	}
	for i := range b.Len() {
		if c := b.Row(i).Cursor(); c != int64(i+1) || b.Row(i).String(0) != strings.Repeat("v", 100) {
			t.Fatalf("row %d has cursor %d, value %q", i, c, b.Row(i).String(0))
		}
	}
}

// A connection that breaks mid-stream: the stream resumes after the last
// chunk it delivered, so every row arrives once, in order.
func TestPostgres_StreamBrokenConnection(t *testing.T) {
	t.Parallel()
	_, p, dsn := proxied(t)
	src := openPostgres(t, dsn)
	in := mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"v"}}
	p.cut.Store(1 << 20) // about half the rows
	next := int64(1)
	err := src.Stream(t.Context(), in, partition.Range{Lo: 1, Hi: 20001}, 1000, mapreduce.NewBatch(in.Columns), func(b *mapreduce.Batch) error {
		for i := range b.Len() {
			if c := b.Row(i).Cursor(); c != next {
				t.Fatalf("got cursor %d, want %d", c, next)
			}
			next++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.cut.Load() != -1 || p.conns.Load() < 2 {
		t.Fatalf("the proxy did not break the connection (%d connections)", p.conns.Load())
	}
	if next != 20001 {
		t.Fatalf("streamed rows up to %d, want 20000", next-1)
	}
}

// A server that stays down: after the retry budget each call fails with
// an *UnavailableError that names the server and says the run resumes.
func TestPostgres_Unavailable(t *testing.T) {
	t.Parallel()
	_, p, dsn := proxied(t)
	src := openPostgres(t, dsn)
	in := mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"v"}}
	info, err := src.Describe(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	src.RetryBudget = 500 * time.Millisecond

	for _, call := range []struct {
		name string
		f    func() error
	}{
		{"ReadChunk", func() error {
			return src.ReadChunk(t.Context(), in, partition.Range{Lo: 1, Hi: 100}, 10, mapreduce.NewBatch(in.Columns))
		}},
		{"Describe", func() error { _, err := src.Describe(t.Context(), in); return err }},
		{"Split", func() error { _, err := src.Split(t.Context(), in, info, 4); return err }},
	} {
		start := time.Now()
		err := call.f()
		took := time.Since(start)
		ue, ok := errorsAs[*sources.UnavailableError](err)
		if !ok {
			t.Fatalf("%s: %v, want an *UnavailableError", call.name, err)
		}
		if ue.Server != p.Addr() || ue.Database != "postgres" || ue.Attempts < 3 || !errors.Is(err, ue.Err) {
			t.Errorf("%s: %+v", call.name, ue)
		}
		for _, want := range []string{p.Addr(), `(database "postgres")`, "connection refused", "the run can be resumed"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s error %q\ndoes not say %q", call.name, err, want)
			}
		}
		if took < src.RetryBudget || took > 5*time.Second {
			t.Errorf("%s gave up after %s, want about %s", call.name, took, src.RetryBudget)
		}
	}

	src.RetryBudget = 0 // no retries
	start := time.Now()
	if _, err := src.Describe(t.Context(), in); err == nil || time.Since(start) > time.Second {
		t.Errorf("Describe without retries: %v after %s", err, time.Since(start))
	}
}

// Errors that retrying cannot fix are returned at once.
func TestPostgres_NoRetry(t *testing.T) {
	t.Parallel()
	bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY, v text)`, `INSERT INTO t VALUES (1, 'a')`)
	in := mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"nope"}}
	start := time.Now()
	err := bundle.src.ReadChunk(t.Context(), in, partition.Range{Lo: 0, Hi: 10}, 10, mapreduce.NewBatch(in.Columns))
	if err == nil || !strings.Contains(err.Error(), "42703") || time.Since(start) > time.Second {
		t.Errorf("ReadChunk of a missing column: %v after %s", err, time.Since(start))
	}
}
