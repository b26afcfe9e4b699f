package schemas

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/outputs/postgres"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// ledger is what the test needs of an output.
type ledger interface {
	plugins.Ledger
	plugins.Planner
}

// databaseSchema has a column of every type. "n" holds numbers beyond
// float64: its column is JSON. Keys are digests of the records' canonical
// form, numbers and all.
const databaseSchema = `{"type": "object", "properties": {
	"t": {"type": "string", "format": "date-time"},
	"d": {"anyOf": [{"format": "date-time"}, {"type": "integer"}]},
	"list": {"type": "array", "items": {"format": "date-time"}},
	"k": {"type": "string"}, "s": {"type": "string"}, "i": {"type": "integer"},
	"f": {"type": "number"}, "b": {"type": "boolean"}, "n": {}, "u": {"type": "string", "format": "date-time"}},
	"x-carpipe": {"time": "t", "on_invalid_record": "skip_record"}}`

// TestDatabasesTakeValidRecords loads records at the edges of what the
// databases hold through the real PostgreSQL and SQLite outputs, and
// queries the type's table: what validation accepts loads and stays
// queryable, and what it refuses is rejected, on both.
func TestDatabasesTakeValidRecords(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "t.schema.json", databaseSchema)
	set, err := Load(dir, Options{Workers: 2, BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	ty := set.Types[0]
	var file strings.Builder
	file.WriteString("[")
	for _, c := range verdictCases {
		file.WriteString(c.record + ",\n")
	}
	extra := []string{
		`{"k": "n1", "n": 0.1}`, `{"k": "n1", "n": 0.10000000000000000001}`,
		`{"k": "n2", "n": 12345678901234567890}`, `{"k": "n2", "n": 12345678901234567891}`,
		`{"k": "n3", "n": 1e131071, "i": 9223372036854775807, "f": 1.7976931348623157e308, "b": true}`,
		`{"k": "n4", "n": -1e-16383, "i": -9223372036854775808, "f": -5e-324, "s": "é\u0001\ud83d\ude00"}`,
		`{"k": "n5", "n": 1e131072}`,
		`{"k": "t1", "t": "0001-01-01T00:00:00Z", "d": "9999-12-31T23:59:59.999999Z", "list": ["2020-01-01", "12:00:00+01:00"]}`,
		`{"k": "t2", "t": "2020-01-01T00:00:00.1234567891+15:59", "d": "2020-01-01T00:00:00-15:59"}`,
	}
	file.WriteString(strings.Join(extra, ",\n") + "]")
	var batches []plugins.Batch
	var records, rejects int
	err = ty.Decode(t.Context(), opener(file.String()), plugins.Limits{}, func(b plugins.Batch) error {
		batches = append(batches, b)
		records += len(b.Records)
		rejects += len(b.Rejects)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := len(extra) - 1 // 1e131072
	for _, c := range verdictCases {
		if c.ok {
			want++
		}
	}
	if records != want || rejects != len(verdictCases)+len(extra)-want {
		t.Errorf("%d records and %d rejects, want %d records", records, rejects, want)
	}
	env := plugins.Env{Name: "db", Logger: slog.New(slog.DiscardHandler)}
	outputs := map[string]func(t *testing.T) plugins.Ledger{
		"postgres": func(t *testing.T) plugins.Ledger {
			p := &postgres.Postgres{DSN: plugintest.PostgresDSN(t), ConnectTimeout: 5 * time.Second}
			if err := p.Init(t.Context(), env); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			return p
		},
		"sqlite": func(t *testing.T) plugins.Ledger {
			s := &sqlite.SQLite{Path: filepath.Join(t.TempDir(), "carpipe.db")}
			if err := s.Init(t.Context(), env); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for name, open := range outputs {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			l, ok := open(t).(ledger)
			if !ok {
				t.Fatalf("the %s output keeps no typed tables: it is no plugins.Planner", name)
			}
			if err := l.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Apply(ctx, set.Tables()); err != nil {
				t.Fatal(err)
			}
			run, err := l.StartRun(ctx, "verdict", "")
			if err != nil {
				t.Fatal(err)
			}
			tx, err := l.Load(ctx, []plugins.FileInfo{{Run: run, Input: "in", Path: "t_1.json", FileType: "t", Size: int64(file.Len()), SHA256: strings.Repeat("ab", 32)}})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range batches {
				if err := tx.Add(ctx, 0, b); err != nil {
					tx.Rollback()
					t.Fatalf("Add: %v", err)
				}
			}
			out, err := tx.Commit(ctx)
			if err != nil || out[0].Err != nil {
				t.Fatalf("Commit: %v %v", err, out)
			}
			counts := out[0].Counts
			if counts.Inserted+counts.Duplicate != int64(records) || counts.Rejected != int64(rejects) {
				t.Fatalf("counts %+v, want %d records and %d rejects", counts, records, rejects)
			}
			if counts.Duplicate != 0 {
				t.Errorf("%d duplicates: different numbers made one key", counts.Duplicate)
			}
			rows := queryAll(t, ctx, l, "SELECT * FROM t")
			if rows != int(counts.Inserted) {
				t.Errorf("the table holds %d rows, want %d", rows, counts.Inserted)
			}
			queryAll(t, ctx, l, "SELECT * FROM rejects")
		})
	}
}

func opener(data string) plugins.Opener {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(data)), nil }
}

// queryAll reads every row and column of query through the ledger's own
// connection, and counts the rows.
func queryAll(t *testing.T, ctx context.Context, l ledger, query string) int {
	t.Helper()
	var db *sql.DB
	switch x := any(l).(type) {
	case *postgres.Postgres:
		db = x.DB
	case *sqlite.SQLite:
		db = x.DB
	}
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	n := 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestBoundsArePostgres holds numberFits and storableTime to PostgreSQL
// itself, near each bound: what they accept it reads (a date-time within
// years 0001 to 9999 in UTC), what they refuse it does not, or not so.
func TestBoundsArePostgres(t *testing.T) {
	db, err := sql.Open("postgres", plugintest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	r := rand.New(rand.NewSource(3))
	numbers := []string{"0", "-0", "1e131071", "1e131072", "9.999e131071", "0.1e131072", "0.01e131073", "10e131070",
		"100e131070", "1e-16383", "1e-16384", "12e-16384", "0e-16383", "0e-16384", "0.000e-16380", "0.0000e-16380",
		"0e1073741822", "0e1073741823", "0e-1073741822", "1.5E+131071", "1e+0131071", "0.00000e131077", "1e-0016383",
		"0." + strings.Repeat("1", 16383), "0." + strings.Repeat("1", 16384), strings.Repeat("9", 131072), strings.Repeat("9", 131073),
		"-" + strings.Repeat("1", 131072) + "." + strings.Repeat("0", 16383), "1" + strings.Repeat("0", 131071) + ".5e1"}
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.Intn(10))
		}
		return string(b)
	}
	for range 150 {
		n := fmt.Sprint(r.Intn(10)) + "." + digits(r.Intn(5))
		if r.Intn(2) == 0 {
			n = fmt.Sprint(1+r.Intn(9)) + digits(r.Intn(4)) + n[1:]
		}
		n = strings.TrimSuffix(n, ".")
		if r.Intn(2) == 0 {
			n += fmt.Sprintf("e%d", 131066+r.Intn(10))
		} else {
			n += fmt.Sprintf("e-%d", 16375+r.Intn(12))
		}
		numbers = append(numbers, n)
	}
	for _, n := range numbers {
		var ok bool
		err := db.QueryRowContext(ctx, "SELECT $1::jsonb IS NOT NULL", n).Scan(&ok)
		if fits := numberFits(n); fits != (err == nil) {
			t.Errorf("%.40s: numberFits %v, PostgreSQL: %v", n, fits, err)
		}
	}
	times := []string{}
	for _, c := range verdictCases {
		for _, part := range strings.Split(c.record, `"`) {
			if _, err := time.Parse(time.RFC3339Nano, part); err == nil {
				times = append(times, part)
			}
		}
	}
	for range 300 {
		base := []string{"0001-01-01T00:", "0000-12-31T23:", "9999-12-31T23:", "10000-01-01T00:"}[r.Intn(3)]
		off := "Z"
		if r.Intn(4) > 0 {
			off = fmt.Sprintf("%c%02d:%02d", "+-"[r.Intn(2)], r.Intn(24), []int{0, 1, 30, 59, 60}[r.Intn(5)])
		}
		frac := []string{"", ".5", ".999999", ".9999995", ".0000004", ".123456789"}[r.Intn(6)]
		times = append(times, fmt.Sprintf("%s%02d:%02d%s%s", base, r.Intn(60), r.Intn(60), frac, off))
	}
	checked := 0
	for _, s := range times {
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			continue // not a date-time for the validator either
		}
		checked++
		var year float64
		err := db.QueryRowContext(ctx, "SELECT extract(year FROM $1::timestamptz AT TIME ZONE 'UTC')", s).Scan(&year)
		pgOK := err == nil && year >= 1 && year <= 9999
		if ours := storableTime(s); (ours == nil) != pgOK {
			t.Errorf("%s: storableTime %v; PostgreSQL reads year %v, %v", s, ours, year, err)
		}
	}
	if checked < 100 {
		t.Fatalf("only %d date-times checked", checked)
	}
}
