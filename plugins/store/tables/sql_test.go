package tables

import (
	"strings"
	"testing"

	"github.com/carpipe/carpipe/plugins"
)

// shipped is like the types carpipe ships: a keyed type with a time, a
// keyless one, one of every column type, and one whose name is as long
// as allowed, so that Ent shortens its foreign key's name.
func shipped() []plugins.Table {
	long := noKey()
	long.Name, long.FileType = strings.Repeat("l", maxIdent), "long"
	return []plugins.Table{status(), noKey(), every(), long}
}

// script is a plan's SQL laid out as SQL lays it out.
func script(p plugins.Plan) string {
	var tables []string
	for _, c := range p.Changes {
		s := "-- file type " + c.FileType + "\n"
		for _, stmt := range c.SQL {
			s += stmt + ";\n"
		}
		tables = append(tables, s)
	}
	return strings.Join(tables, "\n")
}

// SQL, with no database, is what Plan finds against a fresh one.
func TestSQL(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			got, err := SQL(d, shipped())
			if err != nil {
				t.Fatal(err)
			}
			db, _ := openDSN(t, d)
			p := mustPlan(t, db, d, shipped()...)
			checkKinds(t, p, "create:vehicle_status", "create:plain", "create:every", "create:"+shipped()[3].Name)
			want := script(p)
			gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
			for i := range max(len(gl), len(wl)) {
				if i >= len(gl) || i >= len(wl) || gl[i] != wl[i] {
					t.Fatalf("SQL differs from Plan's at line %d:\n%s\nPlan's:\n%s", i+1, got, want)
				}
			}
			if !strings.HasPrefix(got, "-- file type vehicles_status\nCREATE TABLE ") ||
				!strings.Contains(got, ");\n\n-- file type plain\nCREATE TABLE ") || !strings.HasSuffix(got, ");\n") {
				t.Errorf("SQL is not laid out as documented:\n%s", got)
			}
			// The long table's foreign key was renamed as Ent does online.
			if strings.Contains(got, shipped()[3].Name+"__file_id_fkey") {
				t.Errorf("the long table's foreign key keeps its long name:\n%s", got)
			}
		})
	}
}

// The SQL, run by hand on a fresh database, makes the tables Apply makes:
// once file_types records them as Apply would, Plan finds nothing to do.
func TestSQLRuns(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			ctx := t.Context()
			script, err := SQL(d, shipped())
			if err != nil {
				t.Fatal(err)
			}
			db, _ := openDSN(t, d)
			if _, err := db.ExecContext(ctx, script); err != nil {
				t.Fatalf("running the SQL: %v", err)
			}
			x, err := begin(ctx, db, d, true)
			if err != nil {
				t.Fatal(err)
			}
			defer x.rollback()
			for _, tab := range shipped() {
				if err := write(ctx, x.client(), nil, tab); err != nil {
					t.Fatal(err)
				}
			}
			if err := x.commit(); err != nil {
				t.Fatal(err)
			}
			checkKinds(t, mustPlan(t, db, d, shipped()...))
		})
	}
}

func TestSQLErrors(t *testing.T) {
	if _, err := SQL("mysql", shipped()); err == nil || !strings.Contains(err.Error(), `unsupported dialect "mysql"`) {
		t.Errorf("SQL(mysql): %v", err)
	}
	bad := status()
	bad.Columns[0].Type = "date"
	if _, err := SQL(dialects[0], []plugins.Table{bad}); err == nil || !strings.Contains(err.Error(), `column vehicle_id has unknown type "date"`) {
		t.Errorf("SQL with a bad column type: %v", err)
	}
	if s, err := SQL(dialects[1], nil); s != "" || err != nil {
		t.Errorf("SQL of no tables = %q, %v", s, err)
	}
}
