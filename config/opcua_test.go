package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOPCUADefaults(t *testing.T) {
	c, err := Load("testdata/opcua.good.yaml")
	require.NoError(t, err)
	o := c.Sources[0].OPCUA
	require.Equal(t, &OPCUA{
		Endpoint: "opc.tcp://192.0.2.20:4840/kiln", Security: "basic256sha256", Mode: "signandencrypt",
		Auth: "username", Username: "agent", PasswordFile: "/etc/mrv-agent/opcua.pass",
		CertFile: "/var/lib/mrv/opcua/client.crt", KeyFile: "/var/lib/mrv/opcua/client.key",
		TrustDir: "/var/lib/mrv/opcua/trusted", Collect: "subscribe",
		PublishingInterval: Duration(time.Second), QueueSize: DefaultOPCUAQueueSize,
	}, o)
	require.Equal(t, "source", c.Sources[0].Tags[0].Timestamp)
	require.Equal(t, "server", c.Sources[0].Tags[1].Timestamp)
	require.Equal(t, 250*time.Millisecond, c.Sources[0].Tags[1].SamplingInterval.D())
	require.Equal(t, "0.5", c.Sources[0].Tags[0].Deadband.Absolute.String())
	p := c.Sources[1].OPCUA
	require.Equal(t, "", p.Mode, "no mode with security none")
	require.Equal(t, "poll", p.Collect)
	require.Equal(t, "Basic256Sha256", OPCUAPolicyName(o.Security))
}

func TestCheckNodeID(t *testing.T) {
	for id, ok := range map[string]bool{
		"i=2258": true, "ns=2;s=Kiln.FuelFlow": true, "nsu=urn:plant:kiln;i=1001": true,
		"ns=1;g=5eac051c-c313-43d7-b790-24fa2c6b0b37": true, "ns=1;b=YWJj": true, "s=x": true,
		"": false, "2258": false, "ns=x;i=1": false, "ns=-1;i=1": false, "nsu=;i=1": false,
		"i=abc": false, "i=4294967296": false, "ns=1;q=1": false, "ns=1;i=": false,
	} {
		require.Equal(t, ok, checkNodeID(id) == "", id)
	}
}
