package buffer

import (
	"crypto/rand"
	"crypto/sha256"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

// BenchmarkCommit commits ticks of 10 blocks of ~20 KiB over 5 streams, fsync on, with
// published blocks trimmed by a 64 MiB cap as in a long-running agent.
func BenchmarkCommit(b *testing.B) {
	const (
		blocksPerTick = 10
		blockBytes    = 20 << 10
		streams       = 5
	)
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{MaxBytes: 64 << 20, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	defer s.Close()
	heads := make([]Head, streams)
	names := []string{"s0", "s1", "s2", "s3", "s4"}
	payload := make([]byte, blockBytes)
	_, _ = rand.Read(payload)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := Tick{Heads: make(map[string]Head, streams), Blocks: make([]reading.Envelope, 0, blocksPerTick)}
		for j := range blocksPerTick {
			k := j % streams
			p := append([]byte(nil), payload...)
			p[0], p[1] = byte(i), byte(j) // distinct bytes per block
			e := reading.Envelope{Stream: names[k], FirstSeq: heads[k].NextSeq, Records: 50, Bytes: p}
			heads[k].NextSeq += 50
			heads[k].LastHash = sha256.Sum256(p)
			t.Blocks = append(t.Blocks, e)
			t.Heads[names[k]] = heads[k]
		}
		if err := s.Commit(t); err != nil {
			b.Fatal(err)
		}
		for k, h := range heads {
			s.MarkPublished(names[k], h.NextSeq-1)
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*blocksPerTick)/sec, "blocks/s")
	b.ReportMetric(float64(b.N*blocksPerTick*blockBytes)/sec, "bytes/s")
}
