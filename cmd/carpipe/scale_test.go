package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessesShareInbox: four `carpipe run` processes started at once on
// the same 400 files and the same database load every file once, with no
// error from the collision, and all exit 0.
func TestProcessesShareInbox(t *testing.T) {
	in := genInbox(t, 400, 10, 600, 25) // 40 big files, 360 small ones in groups
	db, dsn := pgDB(t)
	cfg := in.config(t, pgOutput(dsn))
	var ps []*proc
	for range 4 {
		ps = append(ps, startProc(t, nil, "run", "-c", cfg, "--workers", "2", "--log-level", "warn"))
	}
	processed := 0
	for i, p := range ps {
		if code := p.wait(2 * time.Minute); code != exitOK {
			t.Fatalf("process %d: exit %d\n%s\n%s", i, code, p.stdout, p.stderr)
		}
		n, failed, _ := summaryCounts(t, p.stdout.String())
		if failed != 0 {
			t.Errorf("process %d failed %d files", i, failed)
		}
		// Nothing worth a warning: collisions are skipped quietly.
		if s := p.stderr.String(); s != "" {
			t.Errorf("process %d wrote to stderr:\n%s", i, s)
		}
		t.Logf("process %d: %d processed", i, n)
		processed += n
	}
	if processed != 400 {
		t.Errorf("the processes processed %d files in all, want 400", processed)
	}
	in.complete(t, db)
	if n := scalar(t, db, "SELECT count(*) FROM runs WHERE status = 'ok'"); n != 4 {
		t.Errorf("%d runs ok, want 4", n)
	}
}

// TestProcessesShareSQLite: on SQLite, processes on one machine share a
// database file just as safely.
func TestProcessesShareSQLite(t *testing.T) {
	in := genInbox(t, 80, 8, 600, 25)
	out, db := backends[0].output(t)
	cfg := in.config(t, out)
	var ps []*proc
	for range 3 {
		ps = append(ps, startProc(t, nil, "run", "-c", cfg, "--workers", "2", "--log-level", "warn"))
	}
	processed := 0
	for i, p := range ps {
		if code := p.wait(2 * time.Minute); code != exitOK {
			t.Fatalf("process %d: exit %d\n%s\n%s", i, code, p.stdout, p.stderr)
		}
		n, _, _ := summaryCounts(t, p.stdout.String())
		processed += n
	}
	if processed != 80 {
		t.Errorf("%d files processed in all, want 80", processed)
	}
	in.complete(t, db)
}

// TestKillAnyMoment kills a run with SIGKILL at a random point (a seed per
// case), checks that nothing is half-done, then runs again at once: the
// killed run's leases, an hour long, are taken over rather than waited for,
// every file is loaded exactly once, and the killed run is closed as
// aborted. On PostgreSQL and on SQLite.
func TestKillAnyMoment(t *testing.T) {
	for _, b := range backends {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", b.name, seed), func(t *testing.T) {
				t.Parallel() // each case has its own inbox and database
				rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))
				in := genInbox(t, 60, 3, 800, 20) // 20 big, 40 small
				out, db := b.output(t)
				cfg := in.config(t, out)
				// Kill once the ledger holds k files, k random, and a random
				// moment later: anywhere in a file, a group, a move, or before
				// the first.
				k := rng.IntN(45)
				p := startProc(t, nil, "run", "-c", cfg, "--workers", "2", "--claim-ttl", "1h")
				waitFor(t, "progress", time.Minute, func() bool {
					var n int
					// Before the migration there is no table yet: 0 files.
					db.QueryRow("SELECT count(*) FROM files").Scan(&n)
					return n >= k || p.exited()
				})
				// The kill point itself, not a wait for anything: up to 200ms
				// past the k-th commit, inside whatever the workers are doing.
				time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
				p.signal(syscall.SIGKILL)
				code := p.wait(time.Minute)
				if code != -1 {
					t.Logf("the run ended before the kill (exit %d)", code)
				}
				if b.name == "postgres" {
					// A COMMIT the process sent before it died still lands,
					// and the server ends the dead process's sessions (and
					// with them its lock) once it sees their sockets closed.
					waitFor(t, "the killed run's sessions to end", 30*time.Second, func() bool {
						var n int
						err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
							AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'`).Scan(&n)
						return err == nil && n == 0
					})
					waitFor(t, "the killed run's lock to go", 30*time.Second, func() bool {
						return scalar(t, db, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1667330672
							AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`) == 0
					})
				}
				loaded := in.afterKill(t, db)
				unmoved := in.loadedInInbox(t, db)
				var killed int // the killed run's row, if it got that far
				db.QueryRow("SELECT count(*) FROM runs WHERE status = 'running'").Scan(&killed)
				t.Logf("seed %d: killed after %d files loaded (%d not moved yet, k=%d)", seed, loaded, unmoved, k)
				if t.Failed() {
					t.FailNow()
				}
				if code == -1 && killed != 1 && loaded > 0 {
					t.Fatalf("%d runs running after the kill, want the killed one", killed)
				}

				r := startProc(t, nil, "run", "-c", cfg, "--workers", "2")
				if code := r.wait(2 * time.Minute); code != exitOK {
					t.Fatalf("re-run: exit %d\n%s\n%s", code, r.stdout, r.stderr)
				}
				// Nothing left to another process: every file not loaded is
				// loaded now, and only those loaded but not moved are skipped.
				processed, failed, skipped := summaryCounts(t, r.stdout.String())
				if processed != len(in.files)-loaded || failed != 0 || skipped != unmoved {
					t.Errorf("re-run: %d processed, %d failed, %d skipped; want %d, 0, %d",
						processed, failed, skipped, len(in.files)-loaded, unmoved)
				}
				in.complete(t, db)
				if n := scalar(t, db, "SELECT count(*) FROM runs WHERE status = 'aborted' AND finished_at IS NOT NULL"); n != killed {
					t.Errorf("%d runs aborted, want %d", n, killed)
				}
				if n := scalar(t, db, "SELECT count(*) FROM runs WHERE status = 'running' OR finished_at IS NULL"); n != 0 {
					t.Errorf("%d runs left unfinished", n)
				}
			})
		}
	}
}

// TestDatabaseCut cuts the database away (through a proxy) during a run.
// Restored in time, the run retries and ends 0 with every file once; never
// restored, it ends 1 with a clear message once --db-retry-for is spent,
// the unfinished files untouched.
func TestDatabaseCut(t *testing.T) {
	for _, restore := range []bool{true, false} {
		t.Run(fmt.Sprint("restored=", restore), func(t *testing.T) {
			t.Parallel() // each case has its own inbox, database and proxy
			in := genInbox(t, 30, 1, 800, 0)
			db, dsn, px := proxied(t)
			cfg := in.config(t, pgOutput(dsn))
			retry := "60s"
			if !restore {
				retry = "2s"
			}
			p := startProc(t, nil, "run", "-c", cfg, "--workers", "2", "--db-retry-for", retry, "--claim-ttl", "2s")
			waitFor(t, "first files", time.Minute, func() bool {
				var n int
				db.QueryRow("SELECT count(*) FROM files").Scan(&n)
				return n >= 4
			})
			px.Cut()
			cut := time.Now()
			if restore {
				waitFor(t, "the outage noticed", 30*time.Second, func() bool {
					return strings.Contains(p.stderr.String(), "database error; files in flight rolled back and retried")
				})
				px.Restore()
				if code := p.wait(2 * time.Minute); code != exitOK {
					t.Fatalf("exit %d\n%s\n%s", code, p.stdout, p.stderr)
				}
				processed, failed, skipped := summaryCounts(t, p.stdout.String())
				// A commit whose reply the cut lost is found loaded on retry.
				if failed != 0 || processed+skipped != 30 {
					t.Fatalf("%d processed, %d failed, %d skipped", processed, failed, skipped)
				}
				wantContains(t, p.stderr.String(), "database reachable again")
				in.complete(t, db)
				return
			}
			code := p.wait(time.Minute)
			took := time.Since(cut)
			if code != exitFatal {
				t.Fatalf("exit %d, want %d\n%s", code, exitFatal, p.stderr)
			}
			wantContains(t, p.stderr.String(), "database unreachable for 2s (the --db-retry-for limit); giving up, unfinished files are left in their inputs")
			if took > 30*time.Second {
				t.Fatalf("gave up %v after the cut", took)
			}
			px.Restore()
			loaded := in.consistent(t, db)
			if loaded == 30 {
				t.Fatal("every file loaded although the database was cut")
			}
			t.Logf("%d files loaded before the cut; exit after %v", loaded, took.Round(time.Millisecond))
			// The next run, the database back, loads the rest once the
			// leases the cut kept from being released have expired.
			waitFor(t, "leases to expire", 30*time.Second, func() bool {
				return scalar(t, db, "SELECT count(*) FROM claims WHERE expires_at > now()") == 0
			})
			r := startProc(t, nil, "run", "-c", cfg)
			if code := r.wait(2 * time.Minute); code != exitOK {
				t.Fatalf("re-run: exit %d\n%s", code, r.stderr)
			}
			in.complete(t, db)
		})
	}
}

var metricsAddr = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)

// get fetches a URL: status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWatchProcess runs `carpipe run --watch` as a daemon: files dropped
// while it runs load within two intervals; /metrics counts them; /healthz
// follows the database; SIGTERM lets the files in flight commit and exits
// 0 with nothing half-done.
func TestWatchProcess(t *testing.T) {
	db, dsn, px := proxied(t)
	const password = "Sup3r-Secret-Pw"
	dsn = strings.Replace(dsn, "postgres@", "postgres:"+password+"@", 1) // trust auth ignores it
	in := genInbox(t, 0, 0, 0, 0)
	more := genInbox(t, 16, 4, 800, 25) // dropped in later
	in.files = more.files
	cfg := in.config(t, pgOutput(dsn))
	const interval = time.Second
	p := startProc(t, nil, "run", "-c", cfg, "--watch", "--interval", interval.String(),
		"--metrics-addr", "127.0.0.1:0", "--db-retry-for", "1s", "--grace", "20s")
	var base string
	waitFor(t, "metrics address", 30*time.Second, func() bool {
		m := metricsAddr.FindStringSubmatch(p.stderr.String())
		if m != nil {
			base = "http://" + m[1]
		}
		return m != nil
	})
	waitFor(t, "healthy", 30*time.Second, func() bool { code, _ := get(t, base+"/healthz"); return code == 200 })

	// Small files dropped in: loaded within two intervals.
	dropped := time.Now()
	var small []string
	for name := range more.files {
		if len(more.files[name]) < 100<<10 {
			small = append(small, name)
			copyFile(t, filepath.Join(more.dir, name), filepath.Join(in.dir, name))
		}
	}
	waitFor(t, "dropped files loaded", 2*interval, func() bool {
		return scalar(t, db, "SELECT count(*) FROM files WHERE status = 'processed'") == len(small)
	})
	t.Logf("%d files loaded %v after the drop", len(small), time.Since(dropped).Round(time.Millisecond))
	want := []string{
		fmt.Sprintf(`carpipe_files_total{file_type="vehicles_status",input="inbox",outcome="processed"} %d`, len(small)),
		fmt.Sprintf(`carpipe_records_total{file_type="vehicles_status",input="inbox",outcome="inserted"} %d`, 25*len(small)),
		`carpipe_database_up 1`, `carpipe_runs_total{status="ok"} 1`, `carpipe_last_success_timestamp_seconds 1.`,
		`carpipe_file_duration_seconds_bucket`, `carpipe_bytes_total{file_type="vehicles_status",input="inbox"}`,
	}
	var body string
	// The loop reports once its files are done; the ledger shows them first.
	waitFor(t, "metrics of the loop", 10*interval, func() bool {
		_, body = get(t, base+"/metrics")
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	})
	if strings.Contains(body, password) || strings.Contains(body, px.Addr()) {
		t.Fatal("/metrics shows the connection's password or address")
	}

	// The database cut away: /healthz says so, and recovers with it.
	px.Cut()
	waitFor(t, "unhealthy", 10*interval, func() bool { code, _ := get(t, base+"/healthz"); return code == 503 })
	_, why := get(t, base+"/healthz")
	wantContains(t, why, "database unreachable")
	if strings.Contains(why, password) {
		t.Fatal("/healthz shows the password")
	}
	px.Restore()
	waitFor(t, "healthy again", 10*interval, func() bool { code, _ := get(t, base+"/healthz"); return code == 200 })

	// Big files dropped in, SIGTERM once the first is loaded.
	for name := range more.files {
		if len(more.files[name]) >= 100<<10 {
			copyFile(t, filepath.Join(more.dir, name), filepath.Join(in.dir, name))
		}
	}
	waitFor(t, "a big file loaded", time.Minute, func() bool {
		return scalar(t, db, "SELECT count(*) FROM files WHERE status = 'processed'") > len(small)
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != exitOK {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
	wantContains(t, p.stderr.String(), `msg=stopped`)
	loaded := in.consistent(t, db)
	t.Logf("%d of %d files loaded at SIGTERM", loaded, len(more.files))
	if n := scalar(t, db, "SELECT count(*) FROM runs WHERE finished_at IS NULL OR status = 'running'"); n != 0 {
		t.Fatalf("%d runs left unfinished\n%s", n, p.stderr)
	}
	if n := scalar(t, db, "SELECT count(*) FROM claims"); n != 0 {
		t.Fatalf("%d leases left", n)
	}
}
