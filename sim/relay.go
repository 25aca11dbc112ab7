package sim

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Relay is a TCP proxy on loopback that tests and the demo put in front of a server to
// inject network faults: DropAll resets every connection (RST, as a cable pull or a NAT
// timeout looks to the client), Pause refuses new connections, SetBackend points it at a
// restarted server. LIBRARIES.md §0.4: the in-process servers cannot simulate outages well.
type Relay struct {
	ln net.Listener

	// mu guards the fields below.
	mu      sync.Mutex
	backend string
	paused  bool
	conns   map[net.Conn]struct{}
	closed  bool

	wg sync.WaitGroup
}

// NewRelay listens on 127.0.0.1:0 and forwards each accepted connection to backend.
func NewRelay(backend string) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, backend: backend, conns: make(map[net.Conn]struct{})}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the relay's listening address (host:port).
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// SetBackend changes where new connections go.
func (r *Relay) SetBackend(addr string) {
	r.mu.Lock()
	r.backend = addr
	r.mu.Unlock()
}

// Pause makes the relay reset new connections at once (and DropAll the current ones) until
// Resume: the server looks unreachable while it keeps running behind the relay.
func (r *Relay) Pause() {
	r.mu.Lock()
	r.paused = true
	r.mu.Unlock()
	r.DropAll()
}

// Resume undoes Pause.
func (r *Relay) Resume() {
	r.mu.Lock()
	r.paused = false
	r.mu.Unlock()
}

// DropAll resets every open connection pair.
func (r *Relay) DropAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		reset(c)
		delete(r.conns, c)
	}
}

// Close stops listening, resets all connections and waits for the relay's goroutines.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	err := r.ln.Close()
	r.DropAll()
	r.wg.Wait()
	return err
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.mu.Lock()
		backend, paused, closed := r.backend, r.paused, r.closed
		r.mu.Unlock()
		if paused || closed {
			reset(c)
			continue
		}
		b, err := net.Dial("tcp", backend)
		if err != nil {
			reset(c)
			continue
		}
		r.mu.Lock()
		if r.closed || r.paused {
			r.mu.Unlock()
			reset(c)
			reset(b)
			continue
		}
		r.conns[c] = struct{}{}
		r.conns[b] = struct{}{}
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(c, b)
		go r.pipe(b, c)
	}
}

func (r *Relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	_, _ = io.Copy(dst, src)
	r.mu.Lock()
	delete(r.conns, dst)
	delete(r.conns, src)
	r.mu.Unlock()
	reset(dst)
	reset(src)
}
