package verify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// SubscribeConfig configures Subscribe.
type SubscribeConfig struct {
	Broker string // mqtt://host:port or mqtts://host:port (tcp://, ssl:// and tls:// also accepted)
	Topic  string // filter, e.g. "mrv/v1/+/+/+/blocks" or "mrv/v1/#" (TOFU needs the status topics too)
	// Also lists further filters subscribed in the same SUBSCRIBE (e.g. the status topic a
	// TOFU verifier learns keys from).
	Also     []string
	ClientID string // fixed, so the broker keeps the persistent session across reconnects
	Username string
	Password string
	TLS      *tls.Config // for mqtts://; nil verifies the server against the system roots
	Logger   *slog.Logger
	// Ready, if set, is called once, after the broker acknowledged the first subscription
	// (SUBACK). The demo waits for it before starting the agent.
	Ready func()
	// Outbox, if set, carries messages to publish (QoS 1, not retained) on the same
	// connection, such as resend requests. Messages wait in it while disconnected.
	Outbox <-chan Outgoing
}

// Outgoing is a message Subscribe publishes from SubscribeConfig.Outbox.
type Outgoing struct {
	Topic   string
	Payload []byte
}

type message struct {
	recv time.Time
	m    mqtt.Message
}

// Backoff between connection attempts, and bounds on waits for the broker.
const (
	minBackoff     = 250 * time.Millisecond
	maxBackoff     = 30 * time.Second
	connectTimeout = 10 * time.Second
)

// Subscribe subscribes to cfg.Topic at QoS 1 with a persistent session (clean session off)
// and calls fn for every message received, one call at a time, with the receive time. It
// reconnects by itself (a fresh client per connection, with backoff, subscribing again
// each time) until ctx is done, then disconnects and returns nil. It returns an error for a
// bad configuration or when the broker refuses the subscription. A message is acknowledged
// (PUBACK) only after fn returned, so the broker redelivers what a stop or a lost
// connection left unprocessed (duplicates, which the verifier drops). fn runs on the caller's
// goroutine; messages reach it in arrival order only approximately (paho hands each to its
// own goroutine so that its router never blocks), which the reorder window absorbs.
func Subscribe(ctx context.Context, cfg SubscribeConfig, fn func(recv time.Time, topic string, payload []byte)) error {
	if cfg.Topic == "" || cfg.ClientID == "" {
		return errors.New("subscribe: topic and client id are required")
	}
	broker, err := brokerURL(cfg.Broker)
	if err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &subscriber{cfg: cfg, broker: broker, log: log, fn: fn, done: make(chan struct{}), msgs: make(chan message, 256)}
	defer close(s.done)
	backoff := minBackoff
	for {
		subscribed, err := s.session(ctx)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if subscribed {
			backoff = minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

type subscriber struct {
	cfg       SubscribeConfig
	broker    string
	log       *slog.Logger
	fn        func(recv time.Time, topic string, payload []byte)
	done      chan struct{} // closed when Subscribe returns: handler goroutines give up
	msgs      chan message
	readyOnce sync.Once
}

func (s *subscriber) handle(_ mqtt.Client, m mqtt.Message) {
	msg := message{recv: time.Now(), m: m}
	select {
	case s.msgs <- msg:
	case <-s.done:
	}
}

// session runs one connection: connect, subscribe, deliver until ctx is done or the
// connection is lost. It reports whether the subscription was acknowledged, and an error
// only when retrying cannot help.
func (s *subscriber) session(ctx context.Context) (subscribed bool, err error) {
	lost := make(chan error, 1)
	opts := mqtt.NewClientOptions().
		AddBroker(s.broker).
		SetClientID(s.cfg.ClientID).
		SetCleanSession(false).
		SetOrderMatters(false).
		SetAutoAckDisabled(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(s.handle).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if s.cfg.Username != "" {
		opts.SetUsername(s.cfg.Username).SetPassword(s.cfg.Password)
	}
	if s.cfg.TLS != nil {
		opts.SetTLSConfig(s.cfg.TLS)
	}
	c := mqtt.NewClient(opts)
	disconnected := false
	defer func() {
		if !disconnected {
			c.Disconnect(250)
		}
	}()

	// Wait for the attempt to end even when ctx is done, so that no paho goroutine outlives
	// Subscribe; an attempt is bounded by connectTimeout.
	ct := c.Connect()
	<-ct.Done()
	if err := ct.Error(); err != nil {
		s.log.Warn("subscribe: connect failed", "broker", s.cfg.Broker, "err", err)
		return false, nil
	}

	// Messages queued in the session may arrive before the SUBACK; with a nil callback the
	// default handler takes every message.
	filters := map[string]byte{s.cfg.Topic: 1}
	for _, f := range s.cfg.Also {
		filters[f] = 1
	}
	st := c.SubscribeMultiple(filters, nil)
	select {
	case <-st.Done():
	case <-ctx.Done():
		return false, nil
	case err := <-lost:
		s.log.Warn("subscribe: connection lost", "broker", s.cfg.Broker, "err", err)
		return false, nil
	case <-time.After(connectTimeout):
		s.log.Warn("subscribe: no SUBACK in time", "topic", s.cfg.Topic)
		return false, nil
	}
	if err := st.Error(); err != nil {
		s.log.Warn("subscribe: subscribe failed", "topic", s.cfg.Topic, "err", err)
		return false, nil
	}
	if tok, ok := st.(*mqtt.SubscribeToken); ok {
		for topic, code := range tok.Result() {
			if code >= 0x80 {
				return false, fmt.Errorf("subscribe %s: broker refused the subscription (code %#x)", topic, code)
			}
		}
	}
	s.log.Info("subscribed", "broker", s.cfg.Broker, "topic", s.cfg.Topic, "client_id", s.cfg.ClientID)
	if s.cfg.Ready != nil {
		s.readyOnce.Do(s.cfg.Ready)
	}
	for {
		select {
		case <-ctx.Done():
			// Hand over what was already received; a message is acknowledged only after fn
			// took it, so the broker keeps the rest for the next session.
			c.Disconnect(250)
			disconnected = true
			for {
				select {
				case m := <-s.msgs:
					s.fn(m.recv, m.m.Topic(), m.m.Payload())
				default:
					return true, nil
				}
			}
		case err := <-lost:
			s.log.Warn("subscribe: connection lost", "broker", s.cfg.Broker, "err", err)
			return true, nil
		case m := <-s.msgs:
			s.fn(m.recv, m.m.Topic(), m.m.Payload())
			m.m.Ack()
		case o := <-s.cfg.Outbox:
			// Not waited for: a lost request is asked again after the verifier's retry interval.
			c.Publish(o.Topic, 1, false, o.Payload)
		}
	}
}

// brokerURL maps mqtt:// and mqtts:// to the schemes paho knows.
func brokerURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("subscribe: broker %q: %w", s, err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("subscribe: broker %q has no host", s)
	}
	switch u.Scheme {
	case "mqtt", "tcp":
		u.Scheme = "tcp"
	case "mqtts", "ssl", "tls":
		u.Scheme = "ssl"
	default:
		return "", fmt.Errorf("subscribe: broker %q: scheme must be mqtt:// or mqtts://", s)
	}
	return u.String(), nil
}
