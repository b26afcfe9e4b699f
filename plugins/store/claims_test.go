package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/outputs/postgres"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

var env = plugins.Env{Name: "db", Logger: slog.New(slog.DiscardHandler)}

type claimer interface {
	plugins.Ledger
	plugins.Claimer
	plugins.Closer
}

// dialects open n handles (as n processes would) on one fresh, migrated
// database, and a plain *sql.DB on it; where is how holderChild finds it.
var dialects = []struct {
	name string
	open func(t testing.TB, n int) (cs []claimer, db *sql.DB, where string)
}{
	{"postgres", func(t testing.TB, n int) ([]claimer, *sql.DB, string) {
		dsn := plugintest.PostgresDSN(t)
		var out []claimer
		for range n {
			p := &postgres.Postgres{DSN: dsn, ConnectTimeout: 5 * time.Second}
			out = append(out, initialise(t, p))
		}
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return out, db, "postgres " + dsn
	}},
	{"sqlite", func(t testing.TB, n int) ([]claimer, *sql.DB, string) {
		path := filepath.Join(t.TempDir(), "c.db")
		var out []claimer
		for range n {
			out = append(out, initialise(t, &sqlite.SQLite{Path: path}))
		}
		db, err := sql.Open("sqlite", sqlite.DSN(path))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return out, db, "sqlite " + path
	}},
}

func initialise(t testing.TB, c claimer) claimer {
	t.Helper()
	if err := c.(plugins.Initer).Init(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// hold shows holders alive through c until the test ends.
func hold(t testing.TB, c plugins.Claimer, holders ...string) {
	t.Helper()
	for _, h := range holders {
		release, err := c.Hold(context.Background(), h)
		if err != nil {
			t.Fatalf("holding %s: %v", h, err)
		}
		t.Cleanup(func() {
			if err := release(); err != nil {
				t.Errorf("releasing %s: %v", h, err)
			}
		})
	}
}

func claim(t *testing.T, c plugins.Claimer, holder, path string, ttl time.Duration) bool {
	t.Helper()
	got, err := c.Claim(t.Context(), holder, "in", []string{path}, ttl)
	if err != nil {
		t.Fatalf("%s claiming %s: %v", holder, path, err)
	}
	return len(got) == 1 && got[0] == path
}

func release(t *testing.T, c plugins.Claimer, holder string, paths ...string) {
	t.Helper()
	if err := c.Release(t.Context(), holder, "in", paths); err != nil {
		t.Fatal(err)
	}
}

func TestClaimLifecycle(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			cs, db, _ := d.open(t, 2)
			a, b := cs[0], cs[1]
			hold(t, a, "A")
			hold(t, b, "B")
			if !claim(t, a, "A", "f.json", time.Minute) {
				t.Fatal("A could not claim a free file")
			}
			if claim(t, b, "B", "f.json", time.Minute) {
				t.Fatal("B took a file A holds")
			}
			if !claim(t, a, "A", "f.json", time.Minute) {
				t.Fatal("A could not claim its own file again (a retry after an outage)")
			}
			if !claim(t, b, "B", "g.json", time.Minute) {
				t.Fatal("B could not claim another file")
			}
			// Release is the holder's only.
			release(t, b, "B", "f.json")
			if claim(t, b, "B", "f.json", time.Minute) {
				t.Fatal("B's release freed A's claim")
			}
			release(t, a, "A", "f.json")
			if !claim(t, b, "B", "f.json", time.Minute) {
				t.Fatal("B could not claim a released file")
			}
			var n int
			if err := db.QueryRow("SELECT count(*) FROM claims WHERE holder = 'B'").Scan(&n); err != nil || n != 2 {
				t.Fatalf("B holds %d claims (%v), want 2", n, err)
			}
			// Inputs are apart: the same path in another input is free.
			if got, err := a.Claim(t.Context(), "A", "other", []string{"f.json"}, time.Minute); err != nil || len(got) != 1 {
				t.Fatalf("same path, other input: %v %v", got, err)
			}
			// Many at once: those free, not those held.
			got, err := a.Claim(t.Context(), "A", "in", []string{"x.json", "g.json", "f.json", "y.json"}, time.Minute)
			if err != nil || fmt.Sprint(got) != "[x.json y.json]" {
				t.Fatalf("bulk claim got %v (%v), want [x.json y.json]", got, err)
			}
			release(t, a, "A", "x.json", "y.json", "g.json")
			if err := db.QueryRow("SELECT count(*) FROM claims WHERE holder = 'A' AND input = 'in'").Scan(&n); err != nil || n != 0 {
				t.Fatalf("A holds %d claims after releasing all (%v)", n, err)
			}
			if err := b.ReleaseAll(t.Context(), "B"); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow("SELECT count(*) FROM claims WHERE holder = 'B'").Scan(&n); err != nil || n != 0 {
				t.Fatalf("B holds %d claims after ReleaseAll (%v)", n, err)
			}
			if err := db.QueryRow("SELECT count(*) FROM claims WHERE holder = 'A'").Scan(&n); err != nil || n != 1 {
				t.Fatalf("A holds %d claims after B's ReleaseAll, want 1 (%v)", n, err)
			}
		})
	}
}

// TestClaimExpiry: a live holder's lease is taken over once it expires
// (a holder stuck for longer than its leases), not before; Renew pushes
// the expiry out; Sweep deletes only expired rows of live holders.
func TestClaimExpiry(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			cs, db, _ := d.open(t, 2)
			a, b := cs[0], cs[1]
			hold(t, a, "A")
			hold(t, b, "B")
			// An expired lease is free at once.
			if !claim(t, a, "A", "dead.json", -time.Second) {
				t.Fatal("claim")
			}
			if !claim(t, b, "B", "dead.json", time.Minute) {
				t.Fatal("B could not take over an expired lease")
			}
			// A short lease: refused while live, taken once it has expired.
			const ttl = 700 * time.Millisecond
			start := time.Now()
			if !claim(t, a, "A", "short.json", ttl) {
				t.Fatal("claim")
			}
			var took time.Duration
			for deadline := time.Now().Add(10 * time.Second); ; {
				if claim(t, b, "B", "short.json", time.Minute) {
					took = time.Since(start)
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("an expired lease was never taken over")
				}
			}
			if took < ttl-100*time.Millisecond {
				t.Fatalf("a lease of %v was taken over after %v", ttl, took)
			}
			// Renew moves every lease of the holder, and only its.
			if !claim(t, a, "A", "r1.json", -time.Second) || !claim(t, a, "A", "r2.json", -time.Second) {
				t.Fatal("claim")
			}
			if err := a.Renew(t.Context(), "A", time.Hour); err != nil {
				t.Fatal(err)
			}
			if claim(t, b, "B", "r1.json", time.Minute) || claim(t, b, "B", "r2.json", time.Minute) {
				t.Fatal("a renewed lease was taken over")
			}
			// Sweep: expired rows go, live ones stay.
			if !claim(t, a, "A", "gone.json", -time.Second) {
				t.Fatal("claim")
			}
			if err := b.Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
			var paths []string
			rows, err := db.Query("SELECT path FROM claims ORDER BY path")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var p string
				rows.Scan(&p)
				paths = append(paths, p)
			}
			want := []string{"dead.json", "r1.json", "r2.json", "short.json"}
			if fmt.Sprint(paths) != fmt.Sprint(want) {
				t.Fatalf("after Sweep: %v, want %v", paths, want)
			}
		})
	}
}

// TestClaimRace: holders on separate connections race for the same files,
// in batches of overlapping sets taken in different orders; each file goes
// to exactly one, and no batch deadlocks.
func TestClaimRace(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			const holders, files, batch = 4, 600, 50
			cs, _, _ := d.open(t, holders)
			for h, c := range cs {
				hold(t, c, fmt.Sprint("H", h))
			}
			var won [files]atomic.Int32
			var wg sync.WaitGroup
			errs := make(chan error, holders)
			for h := range holders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < files; i += batch {
						var paths []string
						for k := range batch {
							// Each holder walks the files from a different
							// start, backwards for odd holders.
							f := (i + k + h*files/holders) % files
							if h%2 == 1 {
								f = files - 1 - f
							}
							paths = append(paths, fmt.Sprintf("%03d.json", f))
						}
						got, err := cs[h].Claim(context.Background(), fmt.Sprint("H", h), "in", paths, time.Minute)
						if err != nil {
							errs <- err
							return
						}
						for _, p := range got {
							var f int
							fmt.Sscanf(p, "%03d.json", &f)
							won[f].Add(1)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for f := range won {
				if n := won[f].Load(); n != 1 {
					t.Errorf("file %d claimed by %d holders", f, n)
				}
			}
		})
	}
}

// BenchmarkClaimRelease is what a file pays for its lease when it loads on
// its own: one claim and one release, each one statement.
func BenchmarkClaimRelease(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			cs, _, _ := d.open(b, 1)
			c := cs[0]
			hold(b, c, "H")
			ctx := context.Background()
			i := 0
			for b.Loop() {
				p := []string{fmt.Sprintf("f%08d.json", i)}
				i++
				if got, err := c.Claim(ctx, "H", "in", p, time.Minute); err != nil || len(got) != 1 {
					b.Fatal(got, err)
				}
				if err := c.Release(ctx, "H", "in", p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClaimReleaseGroup is the same for a group of 200 small files,
// which load in one transaction: reported per file.
func BenchmarkClaimReleaseGroup(b *testing.B) {
	const group = 200
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			cs, _, _ := d.open(b, 1)
			c := cs[0]
			hold(b, c, "H")
			ctx := context.Background()
			i := 0
			for b.Loop() {
				p := make([]string, group)
				for k := range p {
					p[k] = fmt.Sprintf("f%08d.json", i)
					i++
				}
				if got, err := c.Claim(ctx, "H", "in", p, time.Minute); err != nil || len(got) != group {
					b.Fatal(len(got), err)
				}
				if err := c.Release(ctx, "H", "in", p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/file")
		})
	}
}

// BenchmarkClaimHeld is what a replica pays to find that a live holder
// has the files it lists, 200 at a time: each lease in the way costs a
// check of its holder's lock. Reported per file.
func BenchmarkClaimHeld(b *testing.B) {
	const group = 200
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			cs, _, _ := d.open(b, 2)
			hold(b, cs[0], "A")
			hold(b, cs[1], "B")
			ctx := context.Background()
			p := make([]string, group)
			for k := range p {
				p[k] = fmt.Sprintf("f%08d.json", k)
			}
			if got, err := cs[0].Claim(ctx, "A", "in", p, time.Hour); err != nil || len(got) != group {
				b.Fatal(len(got), err)
			}
			for b.Loop() {
				if got, err := cs[1].Claim(ctx, "B", "in", p, time.Hour); err != nil || len(got) != 0 {
					b.Fatal(len(got), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*group), "ns/file")
		})
	}
}
