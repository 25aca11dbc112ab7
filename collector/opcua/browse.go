package opcua

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// BrowseNode is one node of a server's address space below Objects.
type BrowseNode struct {
	NodeID   string // as the config writes it: nsu=<uri>;... for namespaces above 0
	Path     string // browse names from Objects, "/"-separated
	Class    string // Object | Variable
	DataType string // Variables: the data type's name (or the value's type)
	Access   string // Variables: r, w, rw or "-"
	Value    string // Variables: the current value, or its status when not Good
	Depth    int
}

// Browse connects to cfg's endpoint with its security settings (the same trust rules as
// the collector) and walks the hierarchical references from the Objects folder down to
// depth levels, reading each variable's data type, access level and current value.
func Browse(ctx context.Context, cfg config.OPCUA, log *slog.Logger, opts Options, depth int) ([]BrowseNode, error) {
	cfg.Collect = "poll"
	src := config.Source{Name: "browse", Kind: "opcua", OPCUA: &cfg,
		Tags: []config.Tag{{ID: "server_time", Unit: "s", Node: "i=2258"}}}
	s, err := New(src, log, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ep, err := s.selectEndpoint(ctx)
	if err != nil {
		return nil, err
	}
	c, err := opcua.NewClient(s.cfg.Endpoint, s.clientOptions(ep)...)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		closeClient(c)
		return nil, fmt.Errorf("opcua %s: connect: %w", cfg.Endpoint, err)
	}
	defer closeClient(c)
	b := &browser{c: c, ns: c.Namespaces(), max: depth, seen: map[string]bool{}}
	if err := b.walk(ctx, ua.NewNumericNodeID(0, id.ObjectsFolder), "", 1); err != nil {
		return b.out, err
	}
	return b.out, nil
}

type browser struct {
	c    *opcua.Client
	ns   []string
	max  int
	seen map[string]bool
	out  []BrowseNode
}

func (b *browser) walk(ctx context.Context, nid *ua.NodeID, path string, depth int) error {
	if depth > b.max {
		return nil
	}
	refs, err := b.c.Node(nid).References(ctx, id.HierarchicalReferences, ua.BrowseDirectionForward,
		ua.NodeClassObject|ua.NodeClassVariable, true)
	if err != nil {
		return fmt.Errorf("browse %s: %w", nid, err)
	}
	for _, r := range refs {
		if r == nil || r.NodeID == nil || r.NodeID.NodeID == nil {
			continue
		}
		child := r.NodeID.NodeID
		key := child.String()
		if b.seen[key] {
			continue
		}
		b.seen[key] = true
		name := key
		if r.BrowseName != nil && r.BrowseName.Name != "" {
			name = r.BrowseName.Name
		}
		n := BrowseNode{NodeID: b.configID(child), Path: path + "/" + name, Depth: depth, Class: r.NodeClass.String()}
		switch r.NodeClass {
		case ua.NodeClassVariable:
			n.Class = "Variable"
			b.describe(ctx, child, &n)
		case ua.NodeClassObject:
			n.Class = "Object"
		}
		b.out = append(b.out, n)
		if err := b.walk(ctx, child, n.Path, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// configID writes a node id with its namespace URI (nsu=...) when the namespace is not 0:
// namespace indexes can change when the server restarts, URIs do not.
func (b *browser) configID(n *ua.NodeID) string {
	s := n.String()
	if ns := int(n.Namespace()); ns > 0 && ns < len(b.ns) {
		if _, rest, ok := strings.Cut(s, ";"); ok {
			return "nsu=" + b.ns[ns] + ";" + rest
		}
	}
	return s
}

func (b *browser) describe(ctx context.Context, nid *ua.NodeID, n *BrowseNode) {
	res, err := b.c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: nid, AttributeID: ua.AttributeIDDataType},
		{NodeID: nid, AttributeID: ua.AttributeIDAccessLevel},
		{NodeID: nid, AttributeID: ua.AttributeIDValue},
	}})
	if err != nil || len(res.Results) != 3 {
		n.Value = fmt.Sprintf("read failed: %v", err)
		return
	}
	dt, al, val := res.Results[0], res.Results[1], res.Results[2]
	if dt.Status == ua.StatusOK && dt.Value != nil {
		if t, ok := dt.Value.Value().(*ua.NodeID); ok && t.Namespace() == 0 && t.IntID() <= 25 && t.IntID() > 0 {
			n.DataType = id.Name(t.IntID())
		}
	}
	if n.DataType == "" && val.Value != nil {
		n.DataType = fmt.Sprintf("%T", val.Value.Value())
	}
	n.Access = "-"
	if al.Status == ua.StatusOK && al.Value != nil {
		if a, ok := al.Value.Value().(byte); ok {
			n.Access = strings.TrimSpace(map[bool]string{true: "r"}[a&byte(ua.AccessLevelTypeCurrentRead) != 0] +
				map[bool]string{true: "w"}[a&byte(ua.AccessLevelTypeCurrentWrite) != 0])
			if n.Access == "" {
				n.Access = "-"
			}
		}
	}
	switch q := Quality(val.Status); {
	case q.Severity == reading.Bad:
		n.Value = val.Status.Error()
	case val.Value == nil:
		n.Value = "null"
	default:
		if v, ok := Convert(val.Value); ok {
			n.Value = v.String()
		} else {
			n.Value = fmt.Sprint(val.Value.Value())
		}
	}
}
