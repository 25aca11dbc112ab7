package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// retainedGrace is how long FetchRetained waits after its SUBACK: a broker sends a retained
// message right after the SUBACK, on the same connection, so silence beyond this means
// there is none. It delays a fresh gateway's first block (W1: start to first block ≤ 0.2 s).
const retainedGrace = 100 * time.Millisecond

// ErrNoRetained is returned by FetchRetained when the topic holds no retained message.
var ErrNoRetained = errors.New("no retained message")

// FetchRetained reads the retained message of topic once, with its own short-lived client
// (client id cfg.ClientID + "-status", clean session), so the agent can read back its own
// status message at start. ctx bounds the whole exchange.
func FetchRetained(ctx context.Context, cfg Config, topic string) ([]byte, error) {
	u, err := parseBrokerURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	got := make(chan []byte, 1)
	opts := mqtt.NewClientOptions().
		AddBroker(u.String()).
		SetClientID(cfg.ClientID + "-status").
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(false).
		SetConnectTimeout(connectTimeout)
	if d, ok := ctx.Deadline(); ok {
		// The client gives up by itself no later than ctx does, so no attempt outlives us.
		opts.SetConnectTimeout(max(time.Until(d), 10*time.Millisecond))
	}
	if isTLS(u) && cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	if cfg.Username != "" || cfg.Password != "" {
		opts.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	c := mqtt.NewClient(opts)
	ct := c.Connect()
	if err := waitToken(ctx, ct); err != nil {
		<-ct.Done() // bounded by the connect timeout set above
		return nil, fmt.Errorf("read retained %s: connect: %w", topic, err)
	}
	defer c.Disconnect(0)
	sub := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		if m.Retained() {
			select {
			case got <- m.Payload():
			default:
			}
		}
	})
	if err := waitToken(ctx, sub); err != nil {
		return nil, fmt.Errorf("read retained %s: subscribe: %w", topic, err)
	}
	t := time.NewTimer(retainedGrace)
	defer t.Stop()
	select {
	case p := <-got:
		return p, nil
	case <-t.C:
		return nil, ErrNoRetained
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func waitToken(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
