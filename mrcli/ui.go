package mrcli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/urfave/cli/v2"
	"riverqueue.com/riverui"

	"github.com/mrengine/mr/coordinator"
	"github.com/mrengine/mr/internal/pg"
)

func uiCommand() *cli.Command {
	return &cli.Command{
		Name:  "ui",
		Usage: "serve River's web UI: a live view of the distributed tasks in a coordinator database",
		Description: `Serves River's web UI (riverqueue.com/riverui) on http://--addr for the
River jobs in --coordinator, the database that mr worker processes share:
each map and reduce task of a distributed run is one job, with its state,
attempts, errors and queue. It prints the URL it listens on and serves
until Ctrl-C, then exits 0.

The UI can also cancel, retry and delete jobs and pause queues, and it has
no login of its own: anyone who reaches --addr can do all of that. Keep
--addr on the loopback interface (the default), or put a proxy that
authenticates in front of it.

The coordinator must hold River's tables: run mr migrate --coordinator URL
first.`,
		Flags: []cli.Flag{
			coordinatorFlag("`URL` of the coordinator database, where River keeps the tasks (postgres://… or host=… dbname=…)"),
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "serve on `HOST:PORT`; :0 picks a free port"},
		},
		Action: action(serveUI),
	}
}

// uiReadHeaderTimeout bounds how long a client may take to send a
// request's headers, so that one that never finishes cannot hold a
// connection until Ctrl-C.
const uiReadHeaderTimeout = 10 * time.Second

// uiShutdownTimeout is how long Ctrl-C waits for the UI's requests in
// flight, each one query of the coordinator, before it closes their
// connections: a stuck browser must not keep mr from exiting.
const uiShutdownTimeout = 5 * time.Second

// uiMaxConns sizes the coordinator pool: the page polls a handful of
// endpoints every few seconds, and the UI's own background services
// (queue and state counts) take one or two more.
const uiMaxConns = 4

func serveUI(c *cli.Context, args []string) error {
	dsn, addr := c.String("coordinator"), c.String("addr")
	switch {
	case len(args) > 0:
		return usagef("mr ui --help", "mr ui takes no arguments, got %q", args)
	case dsn == "":
		return usagef("mr ui --coordinator URL", "mr ui needs --coordinator, the URL of the database whose River jobs it shows")
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || !isPort(port) {
		return usagef("mr ui --help", "invalid --addr %q: want HOST:PORT, e.g. 127.0.0.1:8080, or :0 for a free port", addr)
	}
	ctx := c.Context
	db, err := pg.Open(ctx, dsn, pg.Options{MaxConns: uiMaxConns})
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	defer db.Close()
	db.SetApplicationName("mr/ui")
	if err := checkSchema(ctx, db, dsn); err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return usagef("mr ui --coordinator "+pasteable(dsn)+" --addr :0", "--addr %s: %v; choose another address, or :0 for a free port", addr, err)
	}
	defer ln.Close() // until Serve owns it

	log := newLogger(c.App.ErrWriter, logText, slog.LevelWarn)
	driver := riverpgxv5.New(db.Pool)
	// A client with no queues only inserts and reads: it works no job,
	// which is mr worker's business, but the UI reads and edits jobs
	// through it.
	client, err := river.NewClient(driver, &river.Config{Logger: log})
	if err != nil {
		return fmt.Errorf("river client on %s: %w", db, err)
	}
	handler, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    log,
	})
	if err != nil {
		return fmt.Errorf("river UI: %w", err)
	}
	// Its background services (the counts the pages poll) stop when ctx
	// ends, on Ctrl-C or when serveUI returns.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := handler.Start(ctx); err != nil {
		return db.Scrub(fmt.Errorf("start River's UI on %s: %w", db, err))
	}

	srv := &http.Server{Handler: handler, ReadHeaderTimeout: uiReadHeaderTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(c.App.Writer, "River UI for %s on %s (Ctrl-C stops it)\n", db, uiURL(ln.Addr()))

	select {
	case err := <-served:
		return fmt.Errorf("serve River's UI on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), uiShutdownTimeout)
	defer stop()
	err = srv.Shutdown(shutdownCtx)
	if err != nil {
		err = errors.Join(err, srv.Close())
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("stop serving River's UI on %s: %w", ln.Addr(), err)
	}
	return nil
}

// checkSchema returns a clear error, naming the mr migrate command to
// run, unless the coordinator's tables are all in place: the UI's queries
// would otherwise fail on each page with a missing table or column.
func checkSchema(ctx context.Context, db *pg.DB, dsn string) error {
	err := coordinator.CheckSchema(ctx, db.Pool)
	if errors.Is(err, coordinator.ErrNotMigrated) {
		return fmt.Errorf("coordinator %s lacks River's tables or mr's (%w); run: mr migrate --coordinator %s", db, err, pasteable(dsn))
	}
	if err != nil {
		return db.Scrub(fmt.Errorf("check River's tables in %s: %w", db, err))
	}
	return nil
}

// uiURL is the URL a browser on this machine opens for the UI served on
// addr: a listener on every interface (:8080, :0) is reached through
// localhost.
func uiURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
