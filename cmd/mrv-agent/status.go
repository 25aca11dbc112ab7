package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/status"
)

// cmdStatus prints a running agent's /status as a compact table and exits 1 when its
// /readyz is not ready (2 when the agent cannot be reached), for scripts and health checks.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	addr := fs.String("addr", "", "status server host:port or URL (default: status.listen of -c FILE, else "+config.DefaultListen+")")
	cfgPath := fs.String("c", "", "agent config file: its status.listen and credentials")
	user := fs.String("user", "", "basic auth user (default: status.username of -c FILE)")
	pwFile := fs.String("password-file", "", "basic auth password file (default: status.password_file of -c FILE)")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of each request")
	if err := parse(fs, args); err != nil {
		return err
	}
	base := *addr
	username, passwordFile := *user, *pwFile
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if base == "" {
			base = cfg.Status.Listen
		}
		if username == "" {
			username, passwordFile = cfg.Status.Username, cfg.Status.PasswordFile
		}
	}
	if base == "" {
		base = config.DefaultListen
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimSuffix(base, "/")
	var password string
	if passwordFile != "" {
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("password file: %w", err)}
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	client := &http.Client{Timeout: *timeout}
	fetch := func(path string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, nil, err
		}
		if username != "" {
			req.SetBasicAuth(username, password)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		return resp.StatusCode, b, err
	}

	code, body, err := fetch("/status")
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if code != http.StatusOK {
		return &exitError{code: 2, err: fmt.Errorf("GET %s/status: %s: %s", base, http.StatusText(code), strings.TrimSpace(string(body)))}
	}
	var r status.Report
	if err := json.Unmarshal(body, &r); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("GET %s/status: %w", base, err)}
	}
	readyCode, readyBody, err := fetch("/readyz")
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	ready := readyCode == http.StatusOK
	f, ok := stdout.(*os.File)
	color := ok && isTerminal(f) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	printStatus(stdout, r, ready, color, time.Now())
	if !ready {
		why := strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(readyBody)), "\n", "; ")), " ")
		return &exitError{code: 1, err: errors.New("not ready: " + why)}
	}
	return nil
}

// ANSI colours, used only on a terminal.
const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

// cell is one table cell and its colour ("" for none).
type cell struct{ text, color string }

func c(text string) cell { return cell{text: text} }

// printTable pads columns by the width of the plain text, so colours do not shift them.
func printTable(w io.Writer, color bool, rows [][]cell) {
	var widths []int
	for _, row := range rows {
		for i, c := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, c := range row {
			text := c.text
			if color && c.color != "" {
				text = c.color + text + ansiReset
			}
			b.WriteString(text)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func printStatus(w io.Writer, r status.Report, ready, color bool, now time.Time) {
	paint := func(text, col string) string {
		if color && col != "" {
			return col + text + ansiReset
		}
		return text
	}
	verdict := func(ok bool, yes, no string) string {
		if ok {
			return paint(yes, ansiGreen)
		}
		return paint(no, ansiRed)
	}
	key := r.KeyID
	if len(key) > 16 {
		key = key[:16] + "…"
	}
	fmt.Fprintf(w, "%s %s/%s  version %s  key %s  clock %s\n", paint("mrv-agent", ansiBold), r.Site, r.Gateway, r.Version, key, r.Clock)
	fmt.Fprintf(w, "%s  %s  last commit %s\n", verdict(r.Healthy, "healthy", "STALLED"), verdict(ready, "ready", "NOT READY"), since(r.Pipeline.LastCommit, now))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  %s %s\n", paint("!", ansiRed), p)
	}
	fmt.Fprintln(w)

	rows := [][]cell{{c("SOURCE"), c("STATE"), c("LAST POLL"), c("READ/S"), c("GOOD/UNC/BAD"), c("LAST ERROR")}}
	for _, s := range r.Sources {
		col := ansiYellow
		switch s.State {
		case status.StateUp:
			col = ansiGreen
		case status.StateDown:
			col = ansiRed
		}
		rows = append(rows, []cell{c(s.Name), {s.State, col}, c(since(s.LastPoll, now)), c(strconv.FormatFloat(s.ReadingsPerSecond, 'f', 1, 64)),
			c(fmt.Sprintf("%d/%d/%d", s.Quality["good"], s.Quality["uncertain"], s.Quality["bad"])), c(oneLine(s.LastError, 60))})
	}
	printTable(w, color, rows)
	fmt.Fprintln(w)

	rows = [][]cell{{c("STREAM"), c("LOG ID"), c("NEXT SEQ"), c("UNPUBLISHED"), c("OLDEST")}}
	for _, s := range r.Streams {
		oldest := "-"
		if !s.OldestUnpublished.IsZero() {
			oldest = (time.Duration(s.OldestUnpublishedSeconds) * time.Second).String()
		}
		logID := s.LogID
		if len(logID) > 12 {
			logID = logID[:12] + "…"
		}
		rows = append(rows, []cell{c(s.Name), c(logID), c(strconv.FormatUint(s.NextSeq, 10)), c(strconv.Itoa(s.Unpublished)), c(oldest)})
	}
	printTable(w, color, rows)
	fmt.Fprintln(w)

	up := r.Uplink
	fmt.Fprintf(w, "uplink  %s, in flight %d, last PUBACK %s, published %d, reconnects %d\n",
		verdict(up.Connected, "connected", "DISCONNECTED"), up.InFlight, since(up.LastAck, now), up.Published, up.Reconnects)
	if up.LastError != "" {
		fmt.Fprintf(w, "        last error: %s\n", oneLine(up.LastError, 100))
	}
	b := r.Buffer
	fmt.Fprintf(w, "buffer  %s, %s live, %s file", verdict(b.Open && !b.Failing, "ok", "FAILING"), sizeString(b.LiveBytes), sizeString(b.FileBytes))
	if b.Quarantined > 0 || b.Dropped > 0 {
		fmt.Fprintf(w, ", %d quarantined, %d dropped", b.Quarantined, b.Dropped)
	}
	fmt.Fprintln(w)
	if len(r.Emissions) > 0 {
		fmt.Fprintln(w)
		rows = [][]cell{{c("EMISSIONS"), c("WINDOW"), c("t CO2"), c("VALIDITY")}}
		for _, e := range r.Emissions {
			col := ""
			switch e.Validity {
			case status.ValidityInvalid:
				col = ansiRed
			case status.ValiditySubstituted:
				col = ansiYellow
			}
			rows = append(rows, []cell{c(e.Source), c(e.Window), c(strconv.FormatFloat(e.Tonnes, 'f', 3, 64)), {e.Validity, col}})
		}
		printTable(w, color, rows)
	}
	for _, cert := range r.Certificates {
		left := cert.NotAfter.Sub(now)
		col := ""
		if left < 30*24*time.Hour {
			col = ansiYellow
		}
		if left <= 0 {
			col = ansiRed
		}
		fmt.Fprintf(w, "cert    %s (%s) expires %s\n", cert.Name, cert.Subject, paint(cert.NotAfter.Format("2006-01-02"), col))
	}
}

// since renders how long ago t was.
func since(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := max(now.Sub(t), 0)
	if d < time.Minute {
		return d.Round(100*time.Millisecond).String() + " ago"
	}
	return d.Round(time.Second).String() + " ago"
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return s
}

func sizeString(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}
