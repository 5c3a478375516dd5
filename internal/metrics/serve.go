package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readHeaderTimeout bounds how long a client may take to send a request's
// headers, so that one that never finishes cannot hold a connection open
// for the life of the run.
const readHeaderTimeout = 10 * time.Second

// shutdownTimeout is how long stop waits for scrapes in flight, which take
// milliseconds, before it closes their connections: a stuck scraper must
// not keep a finished run from exiting.
const shutdownTimeout = 5 * time.Second

// Serve serves the metrics g gathers on http://addr/metrics, in the
// Prometheus text format (or OpenMetrics, protobuf, as the scraper asks),
// until stop is called. addr is host:port as net.Listen takes it; ":0"
// picks a free port, and the address returned is the one bound. ctx bounds
// only the listening. stop shuts the server down, waits for it, and
// reports what went wrong while serving; calling it again returns the same.
func Serve(ctx context.Context, addr string, g prometheus.Gatherer) (bound net.Addr, stop func() error, err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("serve metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stop = sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err := srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, srv.Close())
		}
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if err != nil {
			return fmt.Errorf("stop serving metrics on %s: %w", ln.Addr(), err)
		}
		return nil
	})
	return ln.Addr(), stop, nil
}
