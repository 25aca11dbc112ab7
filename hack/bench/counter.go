package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/verify"
)

// logKey names one hash-chained log.
type logKey struct {
	origin string
	id     [16]byte
}

// seqs is the set of record seqs of one log the counter received.
type seqs struct {
	got      map[uint64]struct{}
	declared [][2]uint64 // gap-seq ranges
}

// counter is the project's verifier (with resend requests) subscribed to the broker, plus
// the counts BENCHMARKS.md asks for: readings delivered (each once), readings in duplicate
// blocks, envelope bytes of distinct blocks, and the set of record seqs per log, from which
// the readings sealed but never delivered are counted against the agent's heads.
type counter struct {
	v      *verify.Verifier
	outbox chan verify.Outgoing
	cancel context.CancelFunc
	done   chan error

	delivered   atomic.Uint64 // reading records of accepted blocks
	dupReadings atomic.Uint64 // reading records of byte-identical copies
	envBytes    atomic.Uint64 // envelope bytes of distinct blocks
	firstBlock  atomic.Int64  // Unix ns of the first block received (any record kind)
	firstRead   atomic.Int64  // Unix ns of the first block holding a reading

	mu      sync.Mutex
	seen    map[[32]byte]struct{}
	logs    map[logKey]*seqs
	gapTime []reading.GapTimeBody

	stopOnce sync.Once
	sum      verify.Summary
}

func startCounter(brokerURL, site, gw string, k *seal.Key) (*counter, error) {
	c := &counter{outbox: make(chan verify.Outgoing, 4096), done: make(chan error, 1),
		seen: map[[32]byte]struct{}{}, logs: map[logKey]*seqs{}}
	v, err := verify.New(verify.Options{Keys: []ed25519.PublicKey{k.Public}, ReorderWindow: 8192,
		ReorderTimeout: 3 * time.Second, ResendRetry: 5 * time.Second, Heartbeat: -1,
		OnRecord: c.onRecord,
		Resend: func(topic string, payload []byte) {
			select {
			case c.outbox <- verify.Outgoing{Topic: topic, Payload: payload}:
			default:
			}
		}})
	if err != nil {
		return nil, err
	}
	c.v = v
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		c.done <- verify.Subscribe(ctx, verify.SubscribeConfig{Broker: brokerURL,
			Topic: "mrv/v1/" + site + "/" + gw + "/+/blocks", ClientID: "bench-counter-" + gw,
			Ready: func() { once.Do(func() { close(ready) }) }, Outbox: c.outbox}, c.add)
	}()
	go func() {
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tk.C:
				v.Tick(now)
			}
		}
	}()
	select {
	case <-ready:
		return c, nil
	case err := <-c.done:
		cancel()
		return nil, fmt.Errorf("counter subscribe: %w", err)
	case <-time.After(15 * time.Second):
		cancel()
		return nil, errors.New("counter did not subscribe within 15s")
	}
}

// add counts one received message and hands it to the verifier.
func (c *counter) add(recv time.Time, topic string, env []byte) {
	h := sha256.Sum256(env)
	c.firstBlock.CompareAndSwap(0, recv.UnixNano())
	c.mu.Lock()
	_, dup := c.seen[h]
	c.seen[h] = struct{}{}
	c.mu.Unlock()
	if dup || c.firstRead.Load() == 0 {
		n := readingsIn(env)
		if dup {
			c.dupReadings.Add(n)
		}
		if n > 0 {
			c.firstRead.CompareAndSwap(0, recv.UnixNano())
		}
	}
	if !dup {
		c.envBytes.Add(uint64(len(env)))
	}
	c.v.Add(recv, topic, env)
}

func readingsIn(env []byte) uint64 {
	s, err := seal.Parse(env)
	if err != nil {
		return 0
	}
	b, err := reading.DecodeBlock(s.Payload)
	if err != nil {
		return 0
	}
	var n uint64
	for _, r := range b.Records {
		if r.Kind == reading.KindReading {
			n++
		}
	}
	return n
}

func (c *counter) onRecord(r verify.RecordOut) {
	if r.Record.Kind == reading.KindReading {
		c.delivered.Add(1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := logKey{r.Origin, r.LogID}
	s := c.logs[k]
	if s == nil {
		s = &seqs{got: map[uint64]struct{}{}}
		c.logs[k] = s
	}
	s.got[r.Seq] = struct{}{}
	switch b := r.Record.Body.(type) {
	case *reading.GapSeqBody:
		s.declared = append(s.declared, [2]uint64{b.First, b.Last})
	case *reading.GapTimeBody:
		c.gapTime = append(c.gapTime, *b)
	}
}

// missing counts, per log named in heads (origin+log id → next seq), the seqs below the
// head neither received nor declared, and asks the agent to resend them.
func (c *counter) missing(site, gw string, heads map[logKey]uint64) (uint64, [][3]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	var ranges [][3]uint64
	for k, next := range heads {
		s := c.logs[k]
		var first, last uint64
		open := false
		flush := func() {
			if !open {
				return
			}
			open = false
			n += last - first + 1
			ranges = append(ranges, [3]uint64{0, first, last})
			stream := k.origin[lastSlash(k.origin)+1:]
			payload, err := reading.EncodeResendRequest(&reading.ResendRequest{Stream: stream, LogID: k.id[:], First: first, Last: last})
			if err == nil {
				select {
				case c.outbox <- verify.Outgoing{Topic: reading.ResendTopic(site, gw), Payload: payload}:
				default:
				}
			}
		}
		for q := uint64(0); q < next; q++ {
			if s != nil && (hasSeq(s, q)) {
				flush()
				continue
			}
			if !open {
				first, open = q, true
			}
			last = q
		}
		flush()
	}
	return n, ranges
}

func hasSeq(s *seqs, q uint64) bool {
	if _, ok := s.got[q]; ok {
		return true
	}
	for _, d := range s.declared {
		if q >= d[0] && q <= d[1] {
			return true
		}
	}
	return false
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

// gapTimes returns the gap-time records received so far.
func (c *counter) gapTimes() []reading.GapTimeBody {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]reading.GapTimeBody(nil), c.gapTime...)
}

// stop ends the subscription and returns the verifier's summary (once; later calls return
// the same summary).
func (c *counter) stop() verify.Summary {
	c.stopOnce.Do(func() {
		c.cancel()
		if err := <-c.done; err != nil {
			fmt.Fprintln(os.Stderr, "bench: counter:", err)
		}
		c.sum = c.v.Finish()
		_ = c.v.Close()
	})
	return c.sum
}
