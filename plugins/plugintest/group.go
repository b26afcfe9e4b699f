package plugintest

import (
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/carpipe/carpipe/plugins"
)

// Group runs the behaviour of plugins.Grouper, for ledgers that have it:
// many small files in one transaction, each still all or nothing with
// exact counts.
func Group(t *testing.T, open func(t *testing.T) (plugins.Ledger, *sql.DB)) {
	t.Run("counts and first copy", func(t *testing.T) {
		f := newFixture(t, open)
		g := grouper(t, f)
		a := plugins.FileData{Info: f.file("a.json", ""), Batch: plugins.Batch{Records: []plugins.Record{
			rec(0, `["k1"]`, `{"v":"a0"}`, at("2020-01-01T00:00:00Z")),
			rec(1, `["k2"]`, `{"v":"a1"}`, nil),
			rec(2, `["k1"]`, `{"v":"a2"}`, nil),
		}}}
		b := plugins.FileData{Info: f.file("b.json", ""), Batch: plugins.Batch{Records: []plugins.Record{
			rec(0, `["k2"]`, `{"v":"b0"}`, nil),
			rec(1, `["k3"]`, `{"v":"b1"}`, at("2020-01-01T02:00:00+02:00")),
		}, Rejects: []plugins.Reject{{Index: 2, Pointer: "/2", Errors: []plugins.FieldError{{Pointer: "/x", Message: "bad"}}, Payload: []byte(`{"x":1}`)}}}}
		c := plugins.FileData{Info: f.file("c.json", ""), Batch: plugins.Batch{Records: []plugins.Record{
			rec(0, `["k4"]`, `{"v":"c0"}`, nil),
		}, Rejects: []plugins.Reject{{Index: 1, Pointer: "/1", Errors: []plugins.FieldError{{Pointer: "/x", Message: "bad"}}, Payload: []byte(`{"x":2}`)}}}}
		out, err := g.LoadFiles(f.ctx, []plugins.FileData{a, b, c})
		if err != nil {
			t.Fatal(err)
		}
		want := []plugins.Counts{{Inserted: 2, Duplicate: 1}, {Inserted: 1, Duplicate: 1, Rejected: 1}, {Inserted: 1, Rejected: 1}}
		for i, o := range out {
			if o.Err != nil || o.Counts != want[i] {
				t.Errorf("file %d: %+v, want %+v", i, o, want[i])
			}
		}
		// The ledger's counts, of files with duplicates and without.
		f.checkProcessed(t, a.Info, 3, want[0])
		f.checkProcessed(t, b.Info, 3, want[1])
		f.checkProcessed(t, c.Info, 2, want[2])
		recs := f.records(t, testFileType)
		if len(recs) != 4 {
			t.Fatalf("%d records stored, want 4", len(recs))
		}
		var payload string
		f.db.QueryRowContext(f.ctx, f.q("SELECT payload FROM records WHERE record_key = ?"), `["k2"]`).Scan(&payload)
		if !jsonEqual(payload, `{"v":"a1"}`) {
			t.Errorf("k2 kept %s; the earlier file's copy must win", payload)
		}
		if n := f.count(t, "SELECT count(*) FROM rejects"); n != 2 {
			t.Errorf("%d rejects stored, want 2", n)
		}
		// The same files again: loaded, nothing changes.
		out, err = g.LoadFiles(f.ctx, []plugins.FileData{a, b, c})
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range out {
			if !errors.Is(o.Err, plugins.ErrLoaded) {
				t.Errorf("file %d again: %+v, want ErrLoaded", i, o)
			}
		}
		if n := f.count(t, "SELECT count(*) FROM files"); n != 3 {
			t.Errorf("%d ledger rows after a second load, want 3", n)
		}
	})
	t.Run("takes over a failed file", func(t *testing.T) {
		f := newFixture(t, open)
		g := grouper(t, f)
		info := f.file("c.json", "")
		if err := f.l.Fail(f.ctx, info, "broken"); err != nil {
			t.Fatal(err)
		}
		out, err := g.LoadFiles(f.ctx, []plugins.FileData{{Info: info, Batch: plugins.Batch{Records: []plugins.Record{rec(0, `["c"]`, `{}`, nil)}}}})
		if err != nil || out[0].Err != nil || out[0].Counts.Inserted != 1 {
			t.Fatalf("%+v %v", out, err)
		}
		f.checkProcessed(t, info, 1, plugins.Counts{Inserted: 1})
	})
	t.Run("a bad file fails the group", func(t *testing.T) {
		f := newFixture(t, open)
		g := grouper(t, f)
		files := []plugins.FileData{
			{Info: f.file("d.json", ""), Batch: plugins.Batch{Records: []plugins.Record{rec(0, `["d"]`, `{}`, nil)}}},
			// Not JSON: no database may store it as a record.
			{Info: f.file("e.json", ""), Batch: plugins.Batch{Records: []plugins.Record{rec(0, `["e"]`, `{"broken": `, nil)}}},
		}
		if !f.pg {
			// SQLite keeps text as given; give it a violation it does refuse.
			files[1].Info.Run = 1 << 40
		}
		if _, err := g.LoadFiles(f.ctx, files); err == nil {
			t.Fatal("a group with a file the database refuses succeeded")
		}
		if n := f.count(t, "SELECT count(*) FROM files"); n != 0 {
			t.Fatalf("%d ledger rows left by a failed group", n)
		}
		if n := f.count(t, "SELECT count(*) FROM records"); n != 0 {
			t.Fatalf("%d records left by a failed group", n)
		}
	})
	t.Run("many files", func(t *testing.T) {
		f := newFixture(t, open)
		g := grouper(t, f)
		var files []plugins.FileData
		for i := range 300 {
			var recs []plugins.Record
			for k := range 10 {
				recs = append(recs, rec(k, fmt.Sprintf(`["%d"]`, i*5+k), `{}`, nil)) // half shared with the next file
			}
			files = append(files, plugins.FileData{Info: f.file(fmt.Sprintf("m%d.json", i), ""), Batch: plugins.Batch{Records: recs}})
		}
		out, err := g.LoadFiles(f.ctx, files)
		if err != nil {
			t.Fatal(err)
		}
		var ins, dup int64
		for _, o := range out {
			ins += o.Counts.Inserted
			dup += o.Counts.Duplicate
		}
		if ins != 299*5+10 || dup != 3000-ins {
			t.Fatalf("inserted %d, duplicate %d", ins, dup)
		}
		for i, o := range out {
			f.checkProcessed(t, files[i].Info, 10, o.Counts)
		}
	})
}

func grouper(t *testing.T, f *fixture) plugins.Grouper {
	g, ok := f.l.(plugins.Grouper)
	if !ok {
		t.Fatalf("%T does not implement plugins.Grouper", f.l)
	}
	return g
}
