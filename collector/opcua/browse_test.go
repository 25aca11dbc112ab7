package opcua_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/collector/opcua"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/sim"
)

func TestBrowseKiln(t *testing.T) {
	t.Parallel()
	srv := startServer(t, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := opcua.Browse(ctx, config.OPCUA{Endpoint: srv.Endpoint(), Security: "none", Auth: "anonymous"}, nil, opcua.Options{}, 3)
	require.NoError(t, err)
	byID := map[string]opcua.BrowseNode{}
	for _, n := range nodes {
		byID[n.NodeID] = n
	}
	for _, p := range sim.OPCUAPoints() {
		n, ok := byID[p.Node]
		require.True(t, ok, "%s not browsed (got %d nodes)", p.Node, len(nodes))
		require.Equal(t, "Variable", n.Class)
		require.Contains(t, n.Path, "/"+p.ID)
		require.NotEmpty(t, n.Value)
		require.NotEmpty(t, n.DataType)
	}
}
