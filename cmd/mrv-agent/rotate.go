package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mrv-agent/mrv-agent/agent"
	"github.com/mrv-agent/mrv-agent/buffer"
	"github.com/mrv-agent/mrv-agent/seal"
)

// rotateWait bounds how long rotate-key waits for a running agent to take the next key.
const rotateWait = 30 * time.Second

func cmdRotateKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig(newFlags("rotate-key", stderr), args)
	if err != nil {
		return err
	}
	next := agent.NextKeyPath(cfg.KeyFile)
	if _, err := os.Stat(next); err == nil {
		return fmt.Errorf("a rotation is already pending: %s exists (a running agent takes it within a second; if none runs, rerun rotate-key after removing it)", next)
	}
	k, err := seal.GenerateKey()
	if err != nil {
		return err
	}
	if err := seal.WriteKey(next, k); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote the next key %s (kid %s)\n", next, seal.KidString(k.Kid))

	a, err := agent.New(cfg, agent.Options{Version: version, NoStatus: true})
	switch {
	case err == nil:
		if err := a.RotateOffline(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "no agent was running: rotated in %s; the streams are signed by kid %s from their next block\n", cfg.Buffer.Path, seal.KidString(k.Kid))
		return nil
	case !errors.Is(err, buffer.ErrInUse):
		return err
	}
	// A running agent holds the buffer: it finds the next key at its next tick.
	fmt.Fprintln(stdout, "an agent is running; waiting for it to seal the rotation")
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(rotateWait)
	for {
		select {
		case <-t.C:
			if _, err := os.Stat(next); errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(stdout, "rotated: the streams are signed by kid %s from their next block\n", seal.KidString(k.Kid))
				return nil
			}
		case <-deadline:
			return fmt.Errorf("the running agent has not taken %s within %s: check its log", next, rotateWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
