package main

import (
	"context"
	"io"
	"os"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRunSetsGCPercent: `run` lowers the GC target to gcPercent unless GOGC is set, in which
// case the operator's value stands.
func TestRunSetsGCPercent(t *testing.T) {
	old, had := os.LookupEnv("GOGC")
	t.Cleanup(func() {
		if had {
			os.Setenv("GOGC", old)
		}
	})
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	require.NoError(t, os.Unsetenv("GOGC"))
	err := cmdRun(context.Background(), []string{"-c", "/nonexistent/config.yaml"}, io.Discard, io.Discard)
	require.Error(t, err, "the config does not exist: run stops after setting the GC target")
	require.Equal(t, gcPercent, debug.SetGCPercent(100))

	t.Setenv("GOGC", "100")
	require.Error(t, cmdRun(context.Background(), []string{"-c", "/nonexistent/config.yaml"}, io.Discard, io.Discard))
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: left alone")
}
