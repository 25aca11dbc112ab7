package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/verify"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// verifyExit maps a summary to the exit status of ARCHITECTURE.md: 0 clean, 1 integrity
// failure (a failed check or an undeclared gap).
func verifyExit(s verify.Summary) error {
	if s.Clean() {
		return nil
	}
	return &exitError{code: 1, err: fmt.Errorf("integrity failure: %d failures, %d undeclared gaps", s.Failures, s.GapsUndeclared)}
}

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	broker := fs.String("broker", "", "MQTT broker URL (mqtt://host:port) to subscribe to")
	topic := fs.String("topic", "", "topic filter, e.g. mrv/v1/plant1/gw1/+/blocks")
	clientID := fs.String("client-id", "", "fixed client id of the persistent session (default mrv-verify-<hostname>)")
	duration := fs.Duration("duration", 0, "stop a broker subscription after this long (0 = until interrupted)")
	file := fs.String("file", "", "capture file to verify instead of a broker")
	var pubkeys stringList
	fs.Var(&pubkeys, "pubkey", "trusted public key file (PKIX PEM); repeatable")
	tofu := fs.Bool("tofu", false, "trust the first key each gateway announces (explicit opt-in)")
	jsonOut := fs.Bool("json", false, "print a JSON line per reading and a summary line")
	evidence := fs.String("evidence", "", "directory for equivocation evidence")
	var keyFiles stringList
	fs.Var(&keyFiles, "keys", "keys file: one or more PKIX PEM public keys, all trusted; repeatable")
	statePath := fs.String("state", "", "bbolt file keeping per-log state across runs (continue a stream where the last run stopped)")
	untilFlag := fs.String("until", "", "RFC 3339 time up to which streams must be alive: a log silent for more than 2×heartbeat before it is truncated (default: the last receive time)")
	heartbeat := fs.Duration("heartbeat", verify.DefaultHeartbeat, "the agents' blocks.heartbeat: the longest a live stream stays silent")
	resend := fs.Bool("resend", false, "ask the gateway (mrv/v1/{site}/{gateway}/cmd/resend) for the blocks of an undeclared gap (--broker only)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var until time.Time
	if *untilFlag != "" {
		t, err := time.Parse(time.RFC3339Nano, *untilFlag)
		if err != nil {
			return usageError("--until: want an RFC 3339 time such as 2026-03-01T12:00:00Z")
		}
		until = t
	}
	if *resend && *broker == "" {
		return usageError("--resend needs --broker")
	}
	if (*broker == "") == (*file == "") {
		return usageError("give exactly one of --broker (with --topic) or --file")
	}
	if *broker != "" && *topic == "" {
		return usageError("--broker needs --topic")
	}
	if len(pubkeys) == 0 && len(keyFiles) == 0 && !*tofu {
		return usageError("no trusted key: give --pubkey FILE or --keys FILE (or --tofu to trust on first use)")
	}
	var keys []ed25519.PublicKey
	for _, p := range pubkeys {
		k, err := seal.LoadPublicKey(p)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--pubkey %s: %w", p, err)}
		}
		keys = append(keys, k)
	}
	for _, p := range keyFiles {
		ks, err := verify.LoadKeysFile(p)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--keys %s: %w", p, err)}
		}
		keys = append(keys, ks...)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	var writeErr error
	opts := verify.Options{Keys: keys, TOFU: *tofu, EvidenceDir: *evidence, Logger: log,
		StatePath: *statePath, Until: until, Heartbeat: *heartbeat}
	if *heartbeat == 0 {
		opts.Heartbeat = -1 // --heartbeat 0: no truncation judgement
	}
	var outbox chan verify.Outgoing
	if *resend {
		outbox = make(chan verify.Outgoing, 64)
		opts.Resend = func(topic string, payload []byte) {
			select {
			case outbox <- verify.Outgoing{Topic: topic, Payload: payload}:
			default:
				log.Warn("verify: resend request dropped, outbox full", "topic", topic)
			}
		}
	}
	if *jsonOut {
		opts.OnReading = func(r verify.ReadingOut) {
			b, err := verify.ReadingJSON(r)
			if err == nil {
				_, err = out.Write(append(b, '\n'))
			}
			if err != nil && writeErr == nil {
				writeErr = err
			}
		}
	}
	v, err := verify.New(opts)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer v.Close()

	if *file != "" {
		f, err := os.Open(*file)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		defer f.Close()
		pr := newProgress(stderr, f) // nil unless stderr is a terminal
		err = verify.ReadCapture(bufio.NewReader(pr.reader(f)), func(recv time.Time, topic string, env []byte) error {
			v.Add(recv, topic, env)
			pr.tick(v.Summary)
			return ctx.Err()
		})
		pr.done()
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("read %s: %w", *file, err)}
		}
	} else {
		sc := verify.SubscribeConfig{Broker: *broker, Topic: *topic, ClientID: defaultClientID(*clientID, "verify"), Logger: log, Outbox: outbox}
		if *tofu {
			// Trust on first use learns each gateway's key from its signed birth message.
			sc.Also = []string{statusFilter(*topic)}
		}
		if err := subscribeFor(ctx, *duration, sc, v.Add, v.Tick); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	s := v.Finish()
	if err := v.Close(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if *jsonOut {
		b, err := s.JSON()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\n", b)
	} else {
		for _, f := range s.Findings {
			fmt.Fprintln(out, f.String())
		}
		fmt.Fprintf(out, "blocks %d, readings %d, duplicates %d, gaps declared %d, undeclared %d, failures %d\n",
			s.Blocks, s.Readings, s.Duplicates, s.GapsDeclared, s.GapsUndeclared, s.Failures)
	}
	if err := out.Flush(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if writeErr != nil {
		return &exitError{code: 2, err: writeErr}
	}
	return verifyExit(s)
}

// subscribeFor subscribes until ctx is done or d has passed (d = 0: until ctx is done),
// calling tick once a second so that reorder windows expire on a quiet stream.
func subscribeFor(ctx context.Context, d time.Duration, cfg verify.SubscribeConfig, fn func(time.Time, string, []byte), tick func(time.Time)) error {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	var g errgroup.Group
	g.Go(func() error {
		defer stop()
		return verify.Subscribe(subCtx, cfg, fn)
	})
	g.Go(func() error {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-subCtx.Done():
				return nil
			case now := <-t.C:
				if tick != nil {
					tick(now)
				}
			}
		}
	})
	return g.Wait()
}

// statusFilter derives the status-topic filter of the gateways a blocks filter covers:
// mrv/v1/{site}/{gateway}/{stream}/blocks -> mrv/v1/{site}/{gateway}/status; anything else
// (such as mrv/v1/#) -> mrv/v1/+/+/status.
func statusFilter(blocks string) string {
	p := strings.Split(blocks, "/")
	if len(p) == 6 && p[0] == "mrv" && p[1] == "v1" && p[5] == "blocks" {
		return strings.Join([]string{"mrv", "v1", p[2], p[3], "status"}, "/")
	}
	return "mrv/v1/+/+/status"
}

func defaultClientID(id, role string) string {
	if id != "" {
		return id
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "host"
	}
	return "mrv-" + role + "-" + h
}

func cmdCapture(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("capture", stderr)
	broker := fs.String("broker", "", "MQTT broker URL (mqtt://host:port)")
	topic := fs.String("topic", "", "topic filter, e.g. mrv/v1/#")
	clientID := fs.String("client-id", "", "fixed client id of the persistent session (default mrv-capture-<hostname>)")
	outPath := fs.String("out", "", "capture file to write (appended to if it exists)")
	duration := fs.Duration("duration", 0, "stop after this long (0 = until interrupted)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *broker == "" || *topic == "" || *outPath == "" {
		return usageError("--broker, --topic and --out are required")
	}
	f, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	bw := bufio.NewWriter(f)
	w := verify.NewCaptureWriter(bw)
	var n int
	var werr error
	err = subscribeFor(ctx, *duration, verify.SubscribeConfig{Broker: *broker, Topic: *topic, ClientID: defaultClientID(*clientID, "capture")},
		func(recv time.Time, topic string, env []byte) {
			if werr != nil {
				return
			}
			if werr = w.Write(recv, topic, env); werr == nil {
				n++
			}
		}, nil)
	err = errors.Join(err, werr, bw.Flush(), f.Sync(), f.Close())
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	fmt.Fprintf(stdout, "captured %d messages to %s\n", n, *outPath)
	return nil
}
