package sim

import (
	"fmt"
	"io"
	"log/slog"
	"net"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is an embedded MQTT broker (mochi-mqtt) on loopback, for the demo and the
// hermetic tests. It allows anonymous clients.
type Broker struct {
	srv  *mqtt.Server
	addr string
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
	return &Broker{srv: srv, addr: addr}, nil
}

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
