package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

type certSource struct{ notAfter time.Time }

func (certSource) Name() string                                    { return "ua1" }
func (certSource) Read(context.Context) ([]reading.Reading, error) { return nil, nil }
func (certSource) Close() error                                    { return nil }
func (c certSource) Certificate() (string, time.Time, bool) {
	return "urn:mrv-agent:p:g", c.notAfter, true
}

func TestCertificatesReachStatus(t *testing.T) {
	exp := time.Date(2028, 11, 27, 0, 0, 0, 0, time.UTC)
	a := &Agent{}
	a.sources = append(a.sources, certSource{notAfter: exp})
	certs := a.certificates()
	require.Len(t, certs, 1)
	require.Equal(t, "opcua ua1", certs[0].Name)
	require.Equal(t, exp, certs[0].NotAfter)
}
