package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the file at path and returns it Parsed.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes data over Default, strictly (an unknown key is an error), fills the
// defaults that depend on other keys, validates the result and sets Hash. name (the file
// name) starts every error message. On error, the returned error joins every problem
// found, one per line, as "name:line: path: problem"; the *Config is nil.
//
// An empty file and a file of more than one YAML document are errors.
func Parse(data []byte, name string) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	c := Default()
	err := dec.Decode(c)
	var te *yaml.TypeError
	if err != nil && !errors.Is(err, io.EOF) && !errors.As(err, &te) {
		return nil, decodeError(data, name, err) // a syntax error: nothing was decoded
	}
	loc := newLocator(data)
	switch {
	case errors.Is(err, io.EOF) || loc.root == nil || loc.root.ShortTag() == "!!null":
		return nil, fmt.Errorf("%s: empty config file", name)
	case loc.root.Kind != yaml.MappingNode:
		return nil, fmt.Errorf("%s:%d: want a mapping of keys (see example.yaml), got a %s", name, loc.root.Line, kindName(loc.root.Kind))
	}
	if err == nil {
		var next yaml.Node
		switch err := dec.Decode(&next); {
		case err == nil:
			return nil, fmt.Errorf("%s:%d: a second YAML document: a config file holds exactly one", name, next.Line)
		case !errors.Is(err, io.EOF):
			return nil, decodeError(data, name, err)
		}
	}
	// After type errors (unknown keys, bad values) the rest of the file is decoded all the
	// same, so validation still runs: the file's every problem is reported at once.
	c.fill(loc.has)
	var fes []*fieldError
	if te == nil || loc.aligned(c) {
		fes = c.check()
	}
	if err := loc.problems(name, te, fes); err != nil {
		return nil, err
	}
	c.Hash = sha256.Sum256(data)
	return c, nil
}

var (
	lineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (?:column (\d+): )?(.*)$`)
	unknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// decodeError formats a YAML syntax error as "name:line: problem".
func decodeError(data []byte, name string, err error) error {
	return newLocator(data).problems(name, &yaml.TypeError{Errors: []string{err.Error()}}, nil)
}

// problems joins decoding errors (te may be nil) and validation errors, in line order, as
// "name:line: path: problem". The YAML library's "line 7: field adress not found in type
// config.Tag" becomes "name:7: sources[0].tags[1].adress: unknown key". A validation error
// at or below a path whose value failed to decode is dropped: it would only repeat it.
func (l *locator) problems(name string, te *yaml.TypeError, fes []*fieldError) error {
	type problem struct {
		line int
		err  error
	}
	var ps []problem
	add := func(line int, err error) { ps = append(ps, problem{line, err}) }
	var bad []string // paths whose value failed to decode
	if te != nil {
		for _, msg := range te.Errors {
			m := lineRE.FindStringSubmatch(msg)
			if m == nil {
				add(0, fmt.Errorf("%s: %s", name, strings.TrimPrefix(msg, "yaml: ")))
				continue
			}
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2]) // 0 when absent
			msg, key := m[3], ""
			if u := unknownRE.FindStringSubmatch(msg); u != nil {
				msg, key = "unknown key", u[1]
			}
			if path := l.pathAt(line, col, key); path != "" {
				msg = path + ": " + msg
				bad = append(bad, path)
			}
			add(line, fmt.Errorf("%s:%d: %s", name, line, msg))
		}
	}
	for _, e := range fes {
		switch line := l.line(e.path); {
		case slices.ContainsFunc(bad, func(b string) bool { return within(e.path, b) }):
		case line > 0:
			add(line, fmt.Errorf("%s:%d: %w", name, line, e))
		default:
			add(0, fmt.Errorf("%s: %w", name, e))
		}
	}
	slices.SortStableFunc(ps, func(a, b problem) int { return a.line - b.line })
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p.err
	}
	return errors.Join(errs...)
}

// within reports whether path is base or below it.
func within(path, base string) bool {
	rest, ok := strings.CutPrefix(path, base)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

// locator maps between paths ("sources[1].tags[0].unit") and the lines of the document's
// keys, so that each error names both.
type locator struct {
	root   *yaml.Node // the document's content; nil when the file does not parse
	keys   []keyPos
	byPath map[string]int // path -> line
	budget int            // nodes left to walk
}

// keyPos is a key, or a list element (key ""), and where its value starts.
type keyPos struct {
	path, key   string
	line        int
	vline, vcol int
}

func newLocator(data []byte) *locator {
	var root yaml.Node
	l := &locator{byPath: map[string]int{}, budget: 4*len(data) + 1024}
	if yaml.Unmarshal(data, &root) == nil && len(root.Content) == 1 {
		l.root = root.Content[0]
		l.walk(l.root, "")
	}
	for _, k := range slices.Backward(l.keys) { // the first of duplicates (merge keys) wins
		l.byPath[k.path] = k.line
	}
	return l
}

func (l *locator) walk(n *yaml.Node, path string) {
	// Aliases are followed, so bound the work against an "excessive aliasing" file (which
	// the decoder refuses, and whose error is then located).
	if l.budget--; l.budget < 0 {
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		l.walk(n.Alias, path)
	case yaml.DocumentNode:
		for _, c := range n.Content {
			l.walk(c, path)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			l.keys = append(l.keys, keyPos{path: p, line: c.Line, vline: c.Line, vcol: c.Column})
			l.walk(c, p)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == "<<" {
				continue
			}
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			v := n.Content[i+1]
			l.keys = append(l.keys, keyPos{path: p, key: k.Value, line: k.Line, vline: v.Line, vcol: v.Column})
			l.walk(v, p)
		}
		// Merge keys last: their keys are this mapping's, unless it sets them itself.
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "<<" {
				l.walk(n.Content[i+1], path)
			}
		}
	}
}

// has reports whether the file has a value at path.
func (l *locator) has(path string) bool {
	_, ok := l.byPath[path]
	return ok
}

// aligned reports whether every source and tag of the file was decoded: yaml/v3 drops a
// list element that is not a mapping, and later elements would then be checked under the
// wrong index.
func (l *locator) aligned(c *Config) bool {
	if l.has(fmt.Sprintf("sources[%d]", len(c.Sources))) {
		return false
	}
	for i, s := range c.Sources {
		if l.has(fmt.Sprintf("sources[%d].tags[%d]", i, len(s.Tags))) {
			return false
		}
	}
	return true
}

// pathAt returns the path of the value at line and column, or else (col 0) of the one key
// on line (named key, if key is not empty); "" if there is none or it is ambiguous.
func (l *locator) pathAt(line, col int, key string) string {
	found := ""
	for _, k := range l.keys {
		if col > 0 && k.vline == line && k.vcol == col {
			return k.path
		}
		if col == 0 && k.line == line && k.key != "" && (key == "" || k.key == key) {
			if found != "" {
				return "" // a flow mapping
			}
			found = k.path
		}
	}
	return found
}

// line returns the line of path or, when path is not in the file (a default), of its
// nearest ancestor that is; 0 when none is.
func (l *locator) line(path string) int {
	for {
		if line, ok := l.byPath[path]; ok {
			return line
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}
