//go:build nodemo

package main

import (
	"context"
	"errors"
	"io"
)

// errNoDemo is what the demo and sim commands return in a gateway build (-tags nodemo),
// which leaves the simulators and the embedded broker out of the binary.
var errNoDemo = errors.New("built without the demo (nodemo)")

func cmdDemo(context.Context, []string, io.Writer, io.Writer) error { return errNoDemo }

func cmdSim(context.Context, []string, io.Writer, io.Writer) error { return errNoDemo }
