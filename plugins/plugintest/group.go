package plugintest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/carpipe/carpipe/plugins"
)

// data is a file and its content, for a group.
type data struct {
	info  plugins.FileInfo
	batch plugins.Batch
}

// loadGroup loads files in one transaction, whole; it rolls back on error.
func (f *fixture) loadGroup(t *testing.T, files []data) ([]plugins.Outcome, error) {
	t.Helper()
	type result struct {
		out []plugins.Outcome
		err error
	}
	r := within(t, fmt.Sprintf("loading a group of %d files", len(files)), func() result {
		infos := make([]plugins.FileInfo, len(files))
		for i, d := range files {
			infos[i] = d.info
		}
		tx, err := f.l.Load(f.ctx, infos)
		if err != nil {
			return result{nil, err}
		}
		for i, d := range files {
			if tx.Loaded(i) {
				continue
			}
			if err := tx.Add(f.ctx, i, d.batch); err != nil {
				tx.Rollback()
				return result{nil, err}
			}
		}
		out, err := tx.Commit(f.ctx)
		if err != nil {
			tx.Rollback()
			return result{nil, err}
		}
		if len(out) != len(files) {
			return result{nil, fmt.Errorf("Commit returned %d outcomes for %d files", len(out), len(files))}
		}
		return result{out, nil}
	})
	return r.out, r.err
}

// checkOutcome checks a file's outcome against its ledger row.
func (f *fixture) checkOutcome(t *testing.T, d data, o plugins.Outcome, want plugins.Counts) {
	t.Helper()
	id := o.Counts.FileID
	o.Counts.FileID = 0
	if o.Err != nil || o.Counts != want {
		t.Errorf("%s: %+v, want %+v", d.info.Path, o, want)
	}
	r := f.checkProcessed(t, d.info, int64(len(d.batch.Records)+len(d.batch.Rejects)), want)
	if r.ID != id {
		t.Errorf("%s: Counts.FileID %d, but its ledger row is %d", d.info.Path, id, r.ID)
	}
}

// ledgerGroup: many small files in one transaction, each still all or
// nothing with exact counts; the earlier file's copy of a key wins.
func ledgerGroup(t *testing.T, f *fixture) {
	a := data{f.file("a.json", ""), plugins.Batch{Records: []plugins.Record{
		rec(0, "k1", `{"v":"a0"}`, at("2020-01-01T00:00:00Z")),
		rec(1, "k2", `{"v":"a1"}`, nil),
		rec(2, "k1", `{"v":"a2"}`, nil),
	}}}
	b := data{f.file("b.json", ""), plugins.Batch{Records: []plugins.Record{
		rec(0, "k2", `{"v":"b0"}`, nil),
		rec(1, "k3", `{"v":"b1"}`, at("2020-01-01T02:00:00+02:00")),
	}, Rejects: []plugins.Reject{{Index: 2, Pointer: "/2", Errors: []plugins.FieldError{{Pointer: "/x", Message: "bad"}}, Payload: []byte(`{"x":1}`)}}}}
	c := data{f.file("c.json", ""), plugins.Batch{Records: []plugins.Record{
		rec(0, "k4", `{"v":"c0"}`, nil),
	}, Rejects: []plugins.Reject{{Index: 1, Pointer: "/1", Errors: []plugins.FieldError{{Pointer: "/x", Message: "bad"}}, Payload: []byte(`{"x":2}`)}}}}
	empty := data{f.file("empty.json", ""), plugins.Batch{}}
	files := []data{a, b, c, empty}
	out, err := f.loadGroup(t, files)
	if err != nil {
		t.Fatal(err)
	}
	want := []plugins.Counts{{Inserted: 2, Duplicate: 1}, {Inserted: 1, Duplicate: 1, Rejected: 1}, {Inserted: 1, Rejected: 1}, {}}
	for i, o := range out {
		f.checkOutcome(t, files[i], o, want[i])
	}
	ids := []int64{out[0].Counts.FileID, out[1].Counts.FileID, out[2].Counts.FileID}
	f.checkRecords(t, testFileType, []row{
		{ids[0], "k1", `{"v":"a0"}`, at("2020-01-01T00:00:00Z")},
		{ids[0], "k2", `{"v":"a1"}`, nil},
		{ids[1], "k3", `{"v":"b1"}`, at("2020-01-01T00:00:00Z")},
		{ids[2], "k4", `{"v":"c0"}`, nil},
	})
	if n := f.count(t, "SELECT count(*) FROM rejects"); n != 2 {
		t.Errorf("%d rejects stored, want 2", n)
	}
	// The same files again: loaded, nothing changes.
	out, err = f.loadGroup(t, files)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if !errors.Is(o.Err, plugins.ErrLoaded) || o.Counts != (plugins.Counts{FileID: f.fileRow(t, files[i].info).ID}) {
			t.Errorf("file %d again: %+v, want ErrLoaded with its row", i, o)
		}
	}
	if n := f.count(t, "SELECT count(*) FROM files"); n != 4 {
		t.Errorf("%d ledger rows after a second load, want 4", n)
	}
}

func ledgerGroupTakeover(t *testing.T, f *fixture) {
	d := data{f.file("c.json", ""), plugins.Batch{Records: []plugins.Record{rec(0, "c", `{}`, nil)}}}
	id, err := f.l.Fail(f.ctx, d.info, "broken")
	if err != nil {
		t.Fatal(err)
	}
	loaded := data{f.file("l.json", ""), plugins.Batch{Records: []plugins.Record{rec(0, "l", `{}`, nil)}}}
	f.mustLoad(t, loaded.info, plugins.Counts{Inserted: 1}, loaded.batch)
	out, err := f.loadGroup(t, []data{loaded, d})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(out[0].Err, plugins.ErrLoaded) {
		t.Errorf("a loaded file in a group: %+v", out[0])
	}
	f.checkOutcome(t, d, out[1], plugins.Counts{Inserted: 1})
	if out[1].Counts.FileID != id {
		t.Errorf("the failed row %d was not taken over: the load is row %d", id, out[1].Counts.FileID)
	}
}

func ledgerGroupRefused(t *testing.T, f *fixture) {
	files := []data{
		{f.file("d.json", ""), plugins.Batch{Records: []plugins.Record{rec(0, "d", `{}`, nil)}}},
		// Not JSON: no database may store it in a JSON column.
		{f.file("e.json", ""), plugins.Batch{Records: []plugins.Record{rec(0, "e", `{"broken": `, nil)}}},
	}
	if !f.pg {
		// SQLite keeps text as given; give it a violation it does refuse.
		files[1].info.Run = 1 << 40
	}
	if _, err := f.loadGroup(t, files); err == nil {
		t.Fatal("a group with a file the database refuses succeeded")
	}
	for _, table := range []string{"files", "orders"} {
		if n := f.count(t, "SELECT count(*) FROM "+table); n != 0 {
			t.Fatalf("%d rows in %s left by a refused group", n, table)
		}
	}
	// The good file alone loads.
	f.mustLoad(t, files[0].info, plugins.Counts{Inserted: 1}, files[0].batch)
}

func ledgerGroupMany(t *testing.T, f *fixture) {
	var files []data
	for i := range 300 {
		var recs []plugins.Record
		for k := range 10 {
			recs = append(recs, rec(k, fmt.Sprint(i*5+k), `{}`, nil)) // half shared with the next file
		}
		files = append(files, data{f.file(fmt.Sprintf("m%d.json", i), ""), plugins.Batch{Records: recs}})
	}
	out, err := f.loadGroup(t, files)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		want := plugins.Counts{Inserted: 5, Duplicate: 5}
		if i == 0 {
			want = plugins.Counts{Inserted: 10}
		}
		f.checkOutcome(t, files[i], o, want)
	}
}

// ledgerGroupTypes: one group holds files of several types, each into its
// own table; keys are unique per type only.
func ledgerGroupTypes(t *testing.T, f *fixture) {
	inv := func(path string) plugins.FileInfo {
		i := f.file(path, "")
		i.FileType = "invoice"
		return i
	}
	files := []data{
		{f.file("o1.json", ""), plugins.Batch{Records: []plugins.Record{rec(0, "a", `{"o":1}`, nil), rec(1, "b", `{"o":1}`, nil)}}},
		{inv("i1.json"), plugins.Batch{Records: []plugins.Record{rec(0, "a", `{"i":1}`, nil), rec(1, "a", `{"i":1}`, nil)}}},
		{f.file("o2.json", ""), plugins.Batch{Records: []plugins.Record{rec(0, "b", `{"o":2}`, nil), rec(1, "c", `{"o":2}`, nil)}}},
		{inv("i2.json"), plugins.Batch{Records: []plugins.Record{rec(0, "b", `{"i":2}`, nil), rec(1, "a", `{"i":2}`, nil)}}},
	}
	out, err := f.loadGroup(t, files)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []plugins.Counts{{Inserted: 2}, {Inserted: 1, Duplicate: 1}, {Inserted: 1, Duplicate: 1}, {Inserted: 1, Duplicate: 1}} {
		f.checkOutcome(t, files[i], out[i], want)
	}
	id := func(i int) int64 { return out[i].Counts.FileID }
	f.checkRecords(t, testFileType, []row{{id(0), "a", `{"o":1}`, nil}, {id(0), "b", `{"o":1}`, nil}, {id(2), "c", `{"o":2}`, nil}})
	f.checkRecords(t, "invoice", []row{{id(1), "a", `{"i":1}`, nil}, {id(3), "b", `{"i":2}`, nil}})
}
