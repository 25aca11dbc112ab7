package status

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mrv-agent/mrv-agent/config"
)

// Defaults of Config.
const (
	DefaultBacklogBudget = 5 * time.Minute
	DefaultSampleEvery   = 5 * time.Second
	DefaultBucket        = time.Minute
	DefaultBuckets       = 60
	DefaultRefresh       = 10 * time.Second

	shutdownWait = 5 * time.Second
)

// Config configures a Server. Zero values take the defaults stated per field.
type Config struct {
	// Listen is host:port; a host that is not loopback requires Username and Password.
	Listen   string
	Username string
	Password config.Secret

	// StallAfter is how long the pipeline may go without a successful commit before
	// /healthz fails; required (the agent uses 3 × blocks.max_age + 10 s).
	StallAfter time.Duration
	// BacklogBudget is how old the oldest unpublished block may get while the uplink is
	// down before /readyz fails; 0 = DefaultBacklogBudget.
	BacklogBudget time.Duration

	SampleEvery time.Duration // chart sampling period; 0 = DefaultSampleEvery
	Bucket      time.Duration // chart resolution; 0 = DefaultBucket
	Buckets     int           // chart length in buckets; 0 = DefaultBuckets (one hour)
	Refresh     time.Duration // the HTML page's refresh period; 0 = DefaultRefresh

	Logger *slog.Logger     // nil discards
	Now    func() time.Time // nil = time.Now
}

// Server serves the status endpoints of one agent. Listen binds it; Run serves it.
type Server struct {
	cfg  Config
	p    Provider
	log  *slog.Logger
	now  func() time.Time
	ln   net.Listener
	hist *history
	mux  *http.ServeMux
	// authHash is SHA-256 of "username:password"; nil means no authentication.
	authHash []byte
}

// CheckListen reports whether listen may be served with or without authentication: a host
// that is not loopback (including an empty host, which means every interface) requires it.
func CheckListen(listen string, auth bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("status.listen %q: %w", listen, err)
	}
	if auth || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("status.listen %q is not a loopback address: set status.username and status.password_file to serve it with basic authentication", listen)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// New checks cfg and returns a Server for p; it binds nothing.
func New(cfg Config, p Provider) (*Server, error) {
	if p == nil {
		return nil, errors.New("status: nil provider")
	}
	auth := cfg.Username != "" || cfg.Password != ""
	if auth && (cfg.Username == "" || cfg.Password == "") {
		return nil, errors.New("status: username and password must be given together")
	}
	if err := CheckListen(cfg.Listen, auth); err != nil {
		return nil, err
	}
	if cfg.StallAfter <= 0 {
		return nil, fmt.Errorf("status: stall deadline %s must be positive", cfg.StallAfter)
	}
	if cfg.BacklogBudget <= 0 {
		cfg.BacklogBudget = DefaultBacklogBudget
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = DefaultSampleEvery
	}
	if cfg.Bucket <= 0 {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Buckets <= 0 {
		cfg.Buckets = DefaultBuckets
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	s := &Server{cfg: cfg, p: p, log: cfg.Logger, now: cfg.Now, hist: newHistory(cfg.Bucket, cfg.Buckets)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if auth {
		h := sha256.Sum256([]byte(cfg.Username + ":" + cfg.Password.Reveal()))
		s.authHash = h[:]
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	s.mux.HandleFunc("GET /status", s.serveStatus)
	s.mux.HandleFunc("GET /metrics", s.serveMetrics)
	s.mux.HandleFunc("GET /{$}", s.servePage)
	return s, nil
}

// Listen binds the configured address. Call it once, before Run.
func (s *Server) Listen() error {
	if s.ln != nil {
		return errors.New("status: already listening")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("status: listen: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (useful with port 0); nil before Listen.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close releases the listener of a Server that will not Run.
func (s *Server) Close() error {
	if s.ln == nil {
		return nil
	}
	return s.ln.Close()
}

// Run serves on the bound listener and samples the provider for the charts until ctx is
// done, then shuts the HTTP server down (bounded wait). A listener that fails is an error.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		return errors.New("status: Run before Listen")
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// A listener that fails stops the sampler too.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("status: serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		s.sample()
		t := time.NewTicker(s.cfg.SampleEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.sample()
			case <-gctx.Done():
				return s.shutdown(ctx, srv)
			}
		}
	})
	return g.Wait()
}

// shutdown stops srv, waiting a bounded time for requests in progress.
func (s *Server) shutdown(ctx context.Context, srv *http.Server) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWait)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("status server shutdown", "err", err)
		return srv.Close()
	}
	return nil
}

// Handler returns the server's routes behind basic authentication when it is configured.
func (s *Server) Handler() http.Handler {
	if s.authHash == nil {
		return s.mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		h := sha256.Sum256([]byte(u + ":" + p))
		if !ok || subtle.ConstantTimeCompare(h[:], s.authHash) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="mrv-agent", charset="UTF-8"`)
			http.Error(w, "unauthorised", http.StatusUnauthorized)
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// sample takes a snapshot into the chart history.
func (s *Server) sample() {
	s.hist.add(s.p.Snapshot(), s.now())
}

// Report is the /status document: the snapshot plus the health and readiness verdicts.
type Report struct {
	Snapshot
	Healthy  bool     `json:"healthy"`
	Ready    bool     `json:"ready"`
	Problems []string `json:"problems"` // why not healthy or not ready; empty when both hold
}

// report takes a snapshot and judges it.
func (s *Server) report() Report {
	snap := s.p.Snapshot()
	now := s.now()
	snap.Time = now
	rates := s.hist.rates()
	for i := range snap.Sources {
		snap.Sources[i].ReadingsPerSecond = rates[snap.Sources[i].Name]
	}
	for i := range snap.Streams {
		if t := snap.Streams[i].OldestUnpublished; !t.IsZero() {
			snap.Streams[i].OldestUnpublishedSeconds = max(0, now.Sub(t).Seconds())
		}
	}
	r := Report{Snapshot: snap, Problems: []string{}}
	health := s.health(snap)
	ready := s.readiness(snap, now)
	r.Healthy, r.Ready = len(health) == 0, len(health) == 0 && len(ready) == 0
	r.Problems = append(append(r.Problems, health...), ready...)
	return r
}

// health lists why the pipeline counts as stalled: no successful commit within the
// deadline (counted from the start before the first commit).
func (s *Server) health(snap Snapshot) []string {
	if snap.Pipeline.Started.IsZero() && snap.Pipeline.LastCommit.IsZero() {
		return []string{"pipeline not started"}
	}
	if idle := time.Duration(snap.Pipeline.IdleSeconds * float64(time.Second)); idle > s.cfg.StallAfter {
		return []string{fmt.Sprintf("pipeline stalled: no commit for %s (deadline %s)", idle.Round(time.Second), s.cfg.StallAfter)}
	}
	return nil
}

// readiness lists why the agent is not ready: the buffer is closed or failing, no source
// is up, or the uplink is down with a backlog older than its budget.
func (s *Server) readiness(snap Snapshot, now time.Time) []string {
	var out []string
	switch {
	case !snap.Buffer.Open:
		out = append(out, "buffer not open")
	case snap.Buffer.Failing:
		out = append(out, "buffer commits failing")
	}
	up := 0
	for _, src := range snap.Sources {
		if src.State == StateUp {
			up++
		}
	}
	if len(snap.Sources) > 0 && up == 0 {
		out = append(out, "no source up")
	}
	if !snap.Uplink.Connected {
		if age := oldestUnpublished(snap, now); age > s.cfg.BacklogBudget {
			out = append(out, fmt.Sprintf("uplink down with a backlog of %s (budget %s)", age.Round(time.Second), s.cfg.BacklogBudget))
		}
	}
	return out
}

// oldestUnpublished is the age of the oldest unpublished block over all streams.
func oldestUnpublished(snap Snapshot, now time.Time) time.Duration {
	var age time.Duration
	for _, st := range snap.Streams {
		if !st.OldestUnpublished.IsZero() {
			age = max(age, now.Sub(st.OldestUnpublished))
		}
	}
	return age
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	snap := s.p.Snapshot()
	writeVerdict(w, s.health(snap))
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	snap := s.p.Snapshot()
	now := s.now()
	writeVerdict(w, append(s.health(snap), s.readiness(snap, now)...))
}

// writeVerdict answers 200 "ok" or 503 with one problem per line.
func writeVerdict(w http.ResponseWriter, problems []string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(problems) == 0 {
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(strings.Join(problems, "\n") + "\n"))
}

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	b, err := json.MarshalIndent(s.report(), "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}
