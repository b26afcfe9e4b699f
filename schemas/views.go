package schemas

import (
	"strconv"
	"strings"

	"github.com/carpipe/carpipe/plugins"
)

var _ plugins.ViewSource = (*Set)(nil)

// Fixed columns every view starts with; a property of the same name gets
// a "_" suffix.
var fixedColumns = []string{"record_id", "file_id", "event_time", "created_at"}

// carpipe's own tables: a file type of that name gets a "_view" suffix.
var tables = []string{"runs", "files", "records", "rejects", "claims", "carpipe_migrations"}

// maxIdent is PostgreSQL's identifier length; longer names are cut.
const maxIdent = 63

// Views describes one typed view per file type, named after it.
func (s *Set) Views() []plugins.View {
	names := newNamer(tables)
	var out []plugins.View
	for _, t := range s.Types {
		out = append(out, plugins.View{Name: names.viewName(t.name), FileType: t.name, Columns: t.columns()})
	}
	return out
}

// columns maps each property to a column. Names that already are plain
// identifiers go first, so they keep their name; then reserved ones, then
// the others, each group in name order.
func (t *Type) columns() []plugins.Column {
	n := newNamer(fixedColumns)
	rank := func(name string) int {
		switch {
		case !plain(name):
			return 2
		case n.reserved[name]:
			return 1
		}
		return 0
	}
	cols := make([]plugins.Column, len(t.Properties))
	for pass := 0; pass < 3; pass++ {
		for i, p := range t.Properties {
			if rank(p.Name) == pass {
				cols[i] = plugins.Column{Name: n.name(p.Name, "_"), Property: p.Name, Type: columnType(p)}
			}
		}
	}
	return cols
}

func columnType(p Property) string {
	switch p.Type {
	case "string":
		if p.Format == "date-time" {
			return plugins.ColTimestamp
		}
		return plugins.ColText
	case "integer":
		return plugins.ColInteger
	case "number":
		return plugins.ColNumber
	case "boolean":
		return plugins.ColBoolean
	}
	return plugins.ColJSON
}

// namer hands out unique identifiers.
type namer struct {
	reserved map[string]bool
	taken    map[string]bool
}

func newNamer(reserved []string) *namer {
	n := &namer{reserved: map[string]bool{}, taken: map[string]bool{}}
	for _, r := range reserved {
		n.reserved[r] = true
	}
	return n
}

func (n *namer) viewName(s string) string { return n.name(s, "_view") }

// name maps s to an unused identifier; a reserved one gets suffix.
func (n *namer) name(s, suffix string) string {
	id := Ident(s)
	if n.reserved[id] {
		id = cut(id, len(suffix)) + suffix
	}
	base := id
	for i := 2; n.taken[id] || n.reserved[id]; i++ {
		tail := "_" + strconv.Itoa(i)
		id = cut(base, len(tail)) + tail
	}
	n.taken[id] = true
	return id
}

// Ident maps a name to a plain SQL identifier: lower case, every character
// outside [a-z0-9_] becomes "_", a leading digit gets a "_" prefix, "" is
// "_", and at most 63 bytes.
func Ident(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	id := b.String()
	if id == "" || id[0] >= '0' && id[0] <= '9' {
		id = "_" + id
	}
	return cut(id, 0)
}

// plain reports whether s is already an identifier Ident leaves alone.
func plain(s string) bool { return Ident(s) == s }

// cut shortens id so that room more bytes still fit in maxIdent.
func cut(id string, room int) string {
	if len(id) > maxIdent-room {
		return id[:maxIdent-room]
	}
	return id
}
