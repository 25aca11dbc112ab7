package verify

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/sim"
)

func TestSubscribe(t *testing.T) {
	b, err := sim.StartBroker("127.0.0.1:0", nil)
	require.NoError(t, err)
	defer b.Close()

	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(5, 3)
	v, _ := newVerifier(t, Options{Heartbeat: -1}, k) // records dated t0, received now: no truncation judgement

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	got := make(chan string, 16)
	done := make(chan error, 1)
	go func() {
		done <- Subscribe(ctx, SubscribeConfig{
			Broker: b.URL(), Topic: "mrv/v1/+/+/+/blocks", ClientID: "verify-test",
			Ready: func() { close(ready) },
		}, func(recv time.Time, topic string, payload []byte) {
			v.Add(recv, topic, payload)
			got <- topic
		})
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("not subscribed")
	}
	for _, e := range envs {
		require.NoError(t, b.Server().Publish(s.topic, e.Bytes, false, 1))
	}
	require.NoError(t, b.Server().Publish("mrv/v1/plant1/gw1/status", []byte("x"), false, 1))
	for range envs {
		select {
		case topic := <-got:
			require.Equal(t, s.topic, topic)
		case <-time.After(10 * time.Second):
			t.Fatal("message not received")
		}
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not return")
	}
	sum := v.Finish()
	require.True(t, sum.Clean(), "%v", sum.Findings)
	require.Equal(t, uint64(5), sum.Blocks)
	require.Zero(t, sum.Ignored, "the status topic is outside the filter")
}

func TestSubscribeReturnsOnCancelWhileBrokerDown(t *testing.T) {
	port, err := sim.FreePort("127.0.0.1")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = Subscribe(ctx, SubscribeConfig{Broker: fmt.Sprintf("mqtt://127.0.0.1:%d", port), Topic: "#", ClientID: "x"},
		func(time.Time, string, []byte) {})
	require.NoError(t, err)
}

func TestSubscribeConfig(t *testing.T) {
	for _, cfg := range []SubscribeConfig{
		{Broker: "mqtt://h:1", ClientID: "c"},
		{Broker: "mqtt://h:1", Topic: "#"},
		{Broker: "http://h:1", Topic: "#", ClientID: "c"},
		{Broker: "mqtt://", Topic: "#", ClientID: "c"},
	} {
		require.Error(t, Subscribe(context.Background(), cfg, nil), "%+v", cfg)
	}
	u, err := brokerURL("mqtts://h:8883")
	require.NoError(t, err)
	require.Equal(t, "ssl://h:8883", u)
}
