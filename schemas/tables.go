package schemas

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/carpipe/carpipe/plugins"
)

var _ plugins.TableSource = (*Set)(nil)

// ownTables are carpipe's tables and those of the migration tools, old
// and new: a file type named like one gets a "_data" suffix, and
// x-carpipe.table may not name one.
var ownTables = []string{"runs", "files", "rejects", "claims", "file_types", "carpipe_revisions",
	"atlas_schema_revisions", "records", "carpipe_migrations"}

// Names starting with "_" are carpipe's: its columns (_file_id, _extra...)
// and whatever it adds later. A derived name that starts with one gets a
// prefix instead.
const (
	tablePrefix  = "t_"
	columnPrefix = "p_"
	tableSuffix  = "_data"
)

// tableName is what x-carpipe.table may be.
var tableName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// maxIdent is PostgreSQL's identifier length; longer names are cut.
const maxIdent = 63

// Tables describes each file type's table, in type name order.
func (s *Set) Tables() []plugins.Table {
	names := tableNames(s.Types)
	out := make([]plugins.Table, len(s.Types))
	for i, t := range s.Types {
		cols := t.columns()
		var key []int
		for _, k := range t.Key {
			if j := slices.IndexFunc(cols, func(c plugins.Column) bool { return c.Property == k }); j >= 0 {
				key = append(key, j)
			}
		}
		out[i] = plugins.Table{Name: names[i], FileType: t.name, Columns: cols, Key: key, HasTime: t.Time != "", Digest: t.digest}
	}
	return out
}

// checkTable refuses an x-carpipe.table that is no plain identifier or
// names one of carpipe's tables.
func checkTable(name string) error {
	if !tableName.MatchString(name) {
		return fmt.Errorf("table %q is not a plain SQL identifier: lower-case letters, digits and \"_\", starting with a letter, at most %d bytes", name, maxIdent)
	}
	if slices.Contains(ownTables, name) {
		return fmt.Errorf("table %q is one of carpipe's own tables (%s): choose another name", name, strings.Join(ownTables, ", "))
	}
	return nil
}

// checkTables refuses two types that name one table.
func checkTables(types []*Type) error {
	by := map[string]*Type{}
	var errs []string
	for _, t := range types {
		if t.Table == "" {
			continue
		}
		if o := by[t.Table]; o != nil {
			errs = append(errs, fmt.Sprintf("schemas %s and %s both name table %q in x-carpipe.table", o.File, t.File, t.Table))
			continue
		}
		by[t.Table] = t
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// tableNames names each type's table: x-carpipe.table when given, the
// type's name made an identifier otherwise.
func tableNames(types []*Type) []string {
	n := newNamer(ownTables, tablePrefix, tableSuffix)
	out := make([]string, len(types))
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.name
		if t.Table != "" && !n.taken[t.Table] {
			out[i] = t.Table
			n.taken[t.Table] = true
		}
	}
	n.assign(out, names)
	return out
}

// columns maps each property to a column, in the order of Properties.
func (t *Type) columns() []plugins.Column {
	n := newNamer(nil, columnPrefix, "")
	names := make([]string, len(t.Properties))
	for i, p := range t.Properties {
		names[i] = p.Name
	}
	ids := make([]string, len(names))
	n.assign(ids, names)
	cols := make([]plugins.Column, len(t.Properties))
	for i, p := range t.Properties {
		cols[i] = plugins.Column{Name: ids[i], Property: p.Name, Type: columnType(p)}
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
	reserved       map[string]bool
	taken          map[string]bool
	prefix, suffix string // for a name starting with "_", for a reserved one
}

func newNamer(reserved []string, prefix, suffix string) *namer {
	n := &namer{reserved: map[string]bool{}, taken: map[string]bool{}, prefix: prefix, suffix: suffix}
	for _, r := range reserved {
		n.reserved[r] = true
	}
	return n
}

// assign names each names[i] whose out[i] is "". Names that already are
// the identifier they map to go first, so that they keep it whatever
// other names come and go; then reserved ones, then the others, each
// group in the order given.
func (n *namer) assign(out, names []string) {
	rank := func(s string) int {
		switch id := n.ident(s); {
		case id != s:
			return 2
		case n.reserved[id]:
			return 1
		}
		return 0
	}
	for pass := range 3 {
		for i, s := range names {
			if out[i] == "" && rank(s) == pass {
				out[i] = n.name(s)
			}
		}
	}
}

// ident is Ident, with the prefix on a name starting with "_".
func (n *namer) ident(s string) string {
	id := Ident(s)
	if id[0] == '_' {
		id = cut(n.prefix+id, 0)
	}
	return id
}

// name maps s to an unused identifier; a reserved one gets the suffix,
// one already taken a number.
func (n *namer) name(s string) string {
	id := n.ident(s)
	if n.reserved[id] {
		id = cut(id, len(n.suffix)) + n.suffix
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

// cut shortens id so that room more bytes still fit in maxIdent.
func cut(id string, room int) string {
	if len(id) > maxIdent-room {
		return id[:maxIdent-room]
	}
	return id
}
