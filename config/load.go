package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
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
//
// The file is parsed once, into the decoder's node tree: the Config is decoded from it,
// and the keys that fill asks about are looked up in it. Nothing of the tree is kept.
func Parse(data []byte, name string) (*Config, error) {
	c := Default()
	doc := document{Config: c}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&doc)
	root := doc.Root.node
	var te *yaml.TypeError
	switch {
	case errors.As(err, &te):
		for i, msg := range te.Errors {
			if m, ok := strings.CutSuffix(msg, " "+documentType); ok {
				te.Errors[i] = m + " " + configType // as if decoded into a Config
			}
		}
		if root == nil {
			// The decoder stopped at the top: not a mapping, or a mapping with a duplicated
			// key. Parse it again (the decoder's tree is garbage by now) to say which.
			root = parseRoot(data)
		}
	case err == nil && root != nil: // a mapping
		var next yaml.Node
		switch err := dec.Decode(&next); {
		case err == nil:
			return nil, fmt.Errorf("%s:%d: a second YAML document: a config file holds exactly one", name, next.Line)
		case !errors.Is(err, io.EOF):
			return nil, decodeError(root, len(data), name, err)
		}
	case err != nil && !errors.Is(err, io.EOF):
		return nil, decodeError(root, len(data), name, err) // a syntax error: nothing was decoded
	}
	switch {
	case errors.Is(err, io.EOF) || root == nil || root.ShortTag() == "!!null":
		return nil, fmt.Errorf("%s: empty config file", name)
	case root.Kind != yaml.MappingNode:
		return nil, fmt.Errorf("%s:%d: want a mapping of keys (see example.yaml), got a %s", name, root.Line, kindName(root.Kind))
	}
	// After type errors (unknown keys, bad values) the rest of the file is decoded all the
	// same, so validation still runs: the file's every problem is reported at once.
	loc := newLocator(root, len(data))
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

// document is what Parse decodes the file into: the Config, and the node of the file's
// top-level mapping. The decoder hands that node to the inline rootNode before it decodes
// the mapping's keys, so the file is parsed once, and decoded by yaml/v3 itself with
// KnownFields: its unknown-key errors, merge keys, aliases and "excessive aliasing" limit
// are as they were. Its errors about top-level keys name this type ("field X not found in
// type config.document"); Parse renames it config.Config.
type document struct {
	Config *Config  `yaml:",inline"`
	Root   rootNode `yaml:",inline"`
}

var (
	documentType = reflect.TypeFor[document]().String()
	configType   = reflect.TypeFor[Config]().String()
)

// rootNode keeps the first node it is handed: the top-level mapping (then any mapping
// merged into it with "<<").
type rootNode struct{ node *yaml.Node }

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *rootNode) UnmarshalYAML(n *yaml.Node) error {
	if r.node == nil {
		r.node = n
	}
	return nil
}

// parseRoot returns the content of the file's first document, nil if it does not parse.
func parseRoot(data []byte) *yaml.Node {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) != 1 {
		return nil
	}
	return doc.Content[0]
}

var (
	lineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (?:column (\d+): )?(.*)$`)
	unknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// decodeError formats a YAML syntax error as "name:line: problem". root is the file's
// top-level node, nil when it did not parse.
func decodeError(root *yaml.Node, size int, name string, err error) error {
	return newLocator(root, size).problems(name, &yaml.TypeError{Errors: []string{err.Error()}}, nil)
}

// problems joins decoding errors (te may be nil) and validation errors, in line order, as
// "name:line: path: problem". The YAML library's "line 7: field adress not found in type
// config.Tag" becomes "name:7: sources[0].tags[1].adress: unknown key". A validation error
// at or below a path whose value failed to decode is dropped: it would only repeat it.
func (l *locator) problems(name string, te *yaml.TypeError, fes []*fieldError) error {
	if te == nil && len(fes) == 0 {
		return nil
	}
	l.index()
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
// keys, so that each error names both. It answers has by navigating the tree; the index
// of every key's path (keys, byPath) is built only to report problems, or when walking
// the whole tree would exceed the budget (a file that aliases heavily).
type locator struct {
	root   *yaml.Node // the document's content; nil when the file does not parse
	size   int        // of the file in bytes
	keys   []keyPos
	byPath map[string]int // path -> line; nil until index
	budget int            // nodes left to walk
}

// keyPos is a key, or a list element (key ""), and where its value starts.
type keyPos struct {
	path, key   string
	line        int
	vline, vcol int
}

func newLocator(root *yaml.Node, size int) *locator {
	l := &locator{root: root, size: size}
	if root != nil && !l.fits() {
		l.index() // has then answers as the index does, for the part of the file walked
	}
	return l
}

// walkBudget bounds the nodes a walk of the tree visits, aliases followed.
func (l *locator) walkBudget() int { return 4*l.size + 1024 }

// fits reports whether walk visits the whole tree within its budget: navigating the tree
// then finds what the index would hold, and takes no more steps than walk would.
func (l *locator) fits() bool {
	left := l.walkBudget()
	var visit func(n *yaml.Node) bool
	visit = func(n *yaml.Node) bool {
		if left--; left < 0 {
			return false
		}
		switch n.Kind {
		case yaml.AliasNode:
			return visit(n.Alias)
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				if !visit(c) {
					return false
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if !visit(n.Content[i+1]) { // the value of a key or, under "<<", of a merge
					return false
				}
			}
		}
		return true
	}
	return visit(l.root)
}

// index builds keys and byPath, once.
func (l *locator) index() {
	if l.byPath != nil {
		return
	}
	l.byPath = map[string]int{}
	l.budget = l.walkBudget()
	if l.root != nil {
		l.walk(l.root, "")
	}
	for _, k := range slices.Backward(l.keys) { // the first of duplicates (merge keys) wins
		l.byPath[k.path] = k.line
	}
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

// has reports whether the file has a value at path: whether walk records path.
func (l *locator) has(path string) bool {
	if l.byPath != nil {
		_, ok := l.byPath[path]
		return ok
	}
	return l.root != nil && find(l.root, path, 0)
}

// find reports whether walk(n, path[:at]) records path: it follows walk's steps along
// path only. The paths are compared as strings, as the index compares them, so a key
// "tags[0]" is found as well as a list of tags.
func find(n *yaml.Node, path string, at int) bool {
	switch n.Kind {
	case yaml.AliasNode:
		return find(n.Alias, path, at)
	case yaml.SequenceNode:
		i, next := elem(path, at)
		if i < 0 || i >= len(n.Content) {
			return false
		}
		return next == len(path) || find(n.Content[i], path, next)
	case yaml.MappingNode:
		from := at // where a key's name starts: after the dot, but for a top-level key
		if at > 0 {
			from++
		}
		keyed := at == 0 || path[at] == '.'
		for i := 0; keyed && i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if k == "<<" || !strings.HasPrefix(path[from:], k) {
				continue
			}
			if next := from + len(k); next == len(path) || find(n.Content[i+1], path, next) {
				return true
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "<<" && find(n.Content[i+1], path, at) {
				return true
			}
		}
	}
	return false
}

// elem parses the list index "[i]" at path[at:], as walk formats it, and returns it and
// where it ends; -1 if there is none.
func elem(path string, at int) (i, next int) {
	rest, ok := strings.CutPrefix(path[at:], "[")
	end := strings.IndexByte(rest, ']')
	if !ok || end < 1 || (rest[0] == '0' && end > 1) {
		return -1, 0
	}
	for _, ch := range rest[:end] {
		if ch < '0' || ch > '9' {
			return -1, 0
		}
	}
	i, err := strconv.Atoi(rest[:end])
	if err != nil {
		return -1, 0
	}
	return i, at + 1 + end + 1
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
	l.index()
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
	l.index()
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
