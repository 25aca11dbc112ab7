package sim

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is an embedded MQTT broker (mochi-mqtt) on loopback, for the demo and the
// hermetic tests. It allows anonymous clients.
type Broker struct {
	srv  *mqtt.Server
	addr string
	sync *retainSync
}

// Gone reports whether the broker has finished with the last connection of clientID (its
// disconnect was processed). Tests wait for it before a retained publish that must follow
// that client's subscription (see retainSync).
func (b *Broker) Gone(clientID string) bool {
	b.sync.mu.Lock()
	defer b.sync.mu.Unlock()
	return b.sync.gone[clientID]
}

// StartBroker starts a broker listening on addr ("127.0.0.1:0" picks a free port).
// Extra hooks (for example one that withholds PUBACKs) are added before it serves.
func StartBroker(addr string, log *slog.Logger, hooks ...mqtt.Hook) (*Broker, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// mochi's TCP listener cannot report the port it bound, so reserve one first.
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("broker address %q: %w", addr, err)
	}
	if port == "0" {
		p, err := FreePort(host)
		if err != nil {
			return nil, err
		}
		addr = net.JoinHostPort(host, fmt.Sprint(p))
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: log})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, err
	}
	rs := &retainSync{gone: make(map[string]bool)}
	if err := srv.AddHook(rs, nil); err != nil {
		return nil, err
	}
	for _, h := range hooks {
		if err := srv.AddHook(h, nil); err != nil {
			return nil, err
		}
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return nil, fmt.Errorf("broker listen %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		return nil, fmt.Errorf("broker serve: %w", err)
	}
	return &Broker{srv: srv, addr: addr, sync: rs}, nil
}

// retainSync orders mochi's retained-message bookkeeping between clients. mochi v2.7.9
// writes a topic's retained path under a lock but reads it without one while it scans the
// retained messages for a new subscription (mochi-mqtt/server#200): two clients touching
// the same topic one after the other have no happens-before edge between them, which the
// race detector reports and which can tear a string read. Taking one mutex before and
// after each side gives every sequential pair that edge; truly simultaneous ones remain
// mochi's bug, which the demo and the tests avoid by sequencing.
type retainSync struct {
	mqtt.HookBase
	mu   sync.Mutex
	gone map[string]bool // client ids whose last connection has ended
}

func (h *retainSync) ID() string { return "retain-sync" }

func (h *retainSync) Provides(b byte) bool {
	return b == mqtt.OnSubscribe || b == mqtt.OnDisconnect || b == mqtt.OnConnect || b == mqtt.OnPublish || b == mqtt.OnRetainMessage
}

func (h *retainSync) edge() {
	h.mu.Lock()
	h.mu.Unlock() //nolint:staticcheck // an empty critical section is the point: it orders the two sides
}

func (h *retainSync) OnSubscribe(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	h.edge()
	return pk
}

func (h *retainSync) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	h.gone[cl.ID] = true
	h.mu.Unlock()
}

func (h *retainSync) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	h.mu.Lock()
	delete(h.gone, cl.ID)
	h.mu.Unlock()
	return nil
}

func (h *retainSync) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.edge()
	return pk, nil
}

func (h *retainSync) OnRetainMessage(*mqtt.Client, packets.Packet, int64) { h.edge() }

// Addr is host:port; URL is the mqtt:// URL clients use.
func (b *Broker) Addr() string { return b.addr }

// URL returns "mqtt://host:port".
func (b *Broker) URL() string { return "mqtt://" + b.addr }

// Server exposes the mochi server (tests inspect or inject through it).
func (b *Broker) Server() *mqtt.Server { return b.srv }

// Close stops the broker and closes its clients.
func (b *Broker) Close() error { return b.srv.Close() }

// FreePort reserves a free TCP port on host by listening on port 0 and closing it, for
// servers that cannot bind :0 themselves (mochi, simonvetter, gopcua's server).
func FreePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}
