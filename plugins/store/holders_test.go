package store_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/outputs/postgres"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
)

// envChild makes the test binary a holder process (holderChild) instead of
// running tests: "postgres <dsn>" or "sqlite <path>".
const envChild = "CARPIPE_TEST_HOLDER_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(envChild); spec != "" {
		if err := holderChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childFiles are the files the child holds.
var childFiles = []string{"c1.json", "c2.json", "c3.json", "c4.json"}

// holderChild is a process that holds "C", starts a run and claims
// childFiles for an hour, says "ready" and waits to be killed.
func holderChild(spec string) error {
	kind, where, _ := strings.Cut(spec, " ")
	var c claimer
	if kind == "postgres" {
		c = &postgres.Postgres{DSN: where, ConnectTimeout: 5 * time.Second}
	} else {
		c = &sqlite.SQLite{Path: where}
	}
	ctx := context.Background()
	if err := c.(plugins.Initer).Init(ctx, env); err != nil {
		return err
	}
	if _, err := c.Hold(ctx, "C"); err != nil {
		return err
	}
	if _, err := c.StartRun(ctx, "child", "C"); err != nil {
		return err
	}
	got, err := c.Claim(ctx, "C", "in", childFiles, time.Hour)
	if err != nil || len(got) != len(childFiles) {
		return fmt.Errorf("the child claimed %v: %v", got, err)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // until killed, or the test is gone
	return nil
}

// startChild runs holderChild on the database and returns once it holds
// its leases.
func startChild(t *testing.T, spec string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+spec)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line == "ready\n"
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the holder process failed")
		}
	case <-time.After(time.Minute):
		t.Fatal("the holder process did not get ready")
	}
	return cmd
}

// waitFor polls cond until it holds, failing after within.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not synchronisation
	}
}

// pgLocks counts the sessions holding holder's lock, as pg_locks shows it
// (objid is the hash as an unsigned number).
func pgLocks(t *testing.T, db *sql.DB, holder string) int {
	t.Helper()
	var n int
	err := db.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = 1667330672 AND objid::bigint = hashtext($1)::bigint & 4294967295 AND objsubid = 2`, holder).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func runStatus(t *testing.T, db *sql.DB, holder string) (status string, finished bool) {
	t.Helper()
	var f sql.NullTime
	if err := db.QueryRow("SELECT status, finished_at FROM runs WHERE holder = '"+holder+"'").Scan(&status, &f); err != nil {
		t.Fatal(err)
	}
	return status, f.Valid
}

func leases(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT holder, path FROM claims ORDER BY path")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h, p string
		if err := rows.Scan(&h, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, h+":"+p)
	}
	return strings.Join(out, " ")
}

// TestClaimDeadHolder: a live holder keeps its unexpired leases and its
// run against another holder; once its process is killed, the other takes
// its leases at once (they were for an hour), and a sweep deletes the rest
// and closes its run as aborted, leaving live holders' leases and runs.
func TestClaimDeadHolder(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			cs, db, where := d.open(t, 1)
			b := cs[0]
			hold(t, b, "B")
			if _, err := b.StartRun(t.Context(), "p", "B"); err != nil {
				t.Fatal(err)
			}
			// A run of no holder (an older carpipe's) is never judged.
			if _, err := b.StartRun(t.Context(), "p", ""); err != nil {
				t.Fatal(err)
			}
			if !claim(t, b, "B", "b.json", time.Hour) {
				t.Fatal("claim")
			}
			lockDir := ""
			if path, ok := strings.CutPrefix(where, "sqlite "); ok {
				lockDir = path + "-holders"
			}
			child := startChild(t, where)

			if claim(t, b, "B", "c1.json", time.Hour) {
				t.Fatal("B took a lease of a live holder")
			}
			if err := b.Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got, want := leases(t, db), "B:b.json C:c1.json C:c2.json C:c3.json C:c4.json"; got != want {
				t.Fatalf("leases after a sweep with every holder alive: %s, want %s", got, want)
			}
			if st, _ := runStatus(t, db, "C"); st != "running" {
				t.Fatalf("a live holder's run is %s", st)
			}
			if lockDir != "" {
				if n := lockDirs(t, lockDir); n != 2 {
					t.Fatalf("%d lock files while B and C live, want 2", n)
				}
			}

			if err := child.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			child.Wait()
			if d.name == "postgres" {
				// The server ends the dead process's session on its own.
				waitFor(t, "the server to see the child's session end", 30*time.Second, func() bool { return pgLocks(t, db, "C") == 0 })
			}
			got, err := b.Claim(t.Context(), "B", "in", []string{"c1.json", "c2.json"}, time.Hour)
			if err != nil || fmt.Sprint(got) != "[c1.json c2.json]" {
				t.Fatalf("B took %v of a dead holder's leases (%v), want both", got, err)
			}
			if err := b.Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got, want := leases(t, db), "B:b.json B:c1.json B:c2.json"; got != want {
				t.Fatalf("leases after the sweep: %s, want %s", got, want)
			}
			if st, finished := runStatus(t, db, "C"); st != "aborted" || !finished {
				t.Fatalf("the dead holder's run is %s (finished: %v), want aborted and finished", st, finished)
			}
			if st, finished := runStatus(t, db, "B"); st != "running" || finished {
				t.Fatalf("the live holder's run is %s (finished: %v)", st, finished)
			}
			if st, _ := runStatus(t, db, ""); st != "running" {
				t.Fatalf("a run of no holder is %s", st)
			}
			if lockDir != "" {
				if n := lockDirs(t, lockDir); n != 1 {
					t.Fatalf("%d lock files after the sweep, want B's only", n)
				}
			}
		})
	}
}

func lockDirs(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.lock"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestHoldLost: when the connection holding a holder's lock is lost, the
// others take its leases at once; the holder stops claiming until it has
// taken its lock again on a new connection, and is then respected again.
func TestHoldLost(t *testing.T) {
	cs, db, _ := dialects[0].open(t, 2)
	a, b := cs[0], cs[1]
	hold(t, a, "A")
	hold(t, b, "B")
	if !claim(t, a, "A", "f.json", time.Hour) {
		t.Fatal("claim")
	}
	var pid int
	if err := db.QueryRow(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 1667330672
		AND objid::bigint = hashtext('A')::bigint & 4294967295
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid); err != nil {
		t.Fatalf("A's lock: %v", err)
	}
	var ended bool
	if err := db.QueryRow("SELECT pg_terminate_backend($1, 10000)", pid).Scan(&ended); err != nil || !ended {
		t.Fatalf("terminating A's lock session: %v %v", ended, err)
	}
	if !claim(t, b, "B", "f.json", time.Hour) {
		t.Fatal("B could not take the lease of a holder whose lock is lost")
	}
	// Another session takes A's lock, so that A cannot take it again.
	squatter, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	if _, err := squatter.ExecContext(t.Context(), "SELECT pg_advisory_lock(1667330672, hashtext('A'))"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A to notice its lock lost", 30*time.Second, func() bool {
		_, err = a.Claim(t.Context(), "A", "in", []string{"probe.json"}, time.Hour)
		return err != nil
	})
	if !errors.Is(err, plugins.ErrFatal) || !strings.Contains(err.Error(), "not claiming until it is taken again") {
		t.Fatalf("A's claim without its lock: %v", err)
	}
	if _, err := squatter.ExecContext(t.Context(), "SELECT pg_advisory_unlock(1667330672, hashtext('A'))"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A to take its lock again", 30*time.Second, func() bool {
		_, err = a.Claim(t.Context(), "A", "in", []string{"g.json"}, time.Hour)
		return err == nil
	})
	if n := pgLocks(t, db, "A"); n != 1 {
		t.Fatalf("%d sessions hold A's lock once A claims again, want 1", n)
	}
	if claim(t, b, "B", "g.json", time.Hour) {
		t.Fatal("B took a lease of A, alive again")
	}
}
