package main

// Helpers for the tests that run carpipe as real processes: the binary,
// built once; processes with captured output; the database behind a
// proxy that can cut it away; generated inboxes.

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins/plugintest"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	// Started through binary's link, this test binary is carpipe itself:
	// the same code as main, and nothing more to build.
	if filepath.Base(os.Args[0]) == "carpipe" {
		os.Exit(runCarpipe())
	}
	scriptMain(m, func() {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
	})
}

// binary returns a carpipe command for the tests to start as a process:
// a link named carpipe to the test binary, which TestMain turns into
// carpipe. No second build (TestDockerfile checks the image's build).
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			binErr = err
			return
		}
		if binDir, binErr = os.MkdirTemp("", "carpipe-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "carpipe")
		binErr = os.Symlink(exe, binPath)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is a running carpipe.
type proc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *plugintest.Buffer
	done           chan struct{}
	state          *os.ProcessState
}

func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stdout: &plugintest.Buffer{}, stderr: &plugintest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait returns the exit code (-1 when a signal ended the process).
func (p *proc) wait(within time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.state.ExitCode()
	case <-time.After(within):
		// SIGQUIT makes Go print every goroutine: where it hangs.
		p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
		p.t.Fatalf("carpipe %v still running after %v\nstderr:\n%s", p.cmd.Args[1:], within, p.stderr)
		return 0
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil && !p.exited() {
		p.t.Fatal(err)
	}
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

// summaryLine reads "N processed, N failed, N skipped" from run's output.
var summaryLine = regexp.MustCompile(`files:\s+(\d+) processed, (\d+) failed, (\d+) skipped`)

func summaryCounts(t *testing.T, out string) (processed, failed, skipped int) {
	t.Helper()
	m := summaryLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in:\n%s", out)
	}
	processed, _ = strconv.Atoi(m[1])
	failed, _ = strconv.Atoi(m[2])
	skipped, _ = strconv.Atoi(m[3])
	return
}

// proxied is a fresh test database, reached directly and through a
// proxy that can cut it away.
func proxied(t *testing.T) (*sql.DB, string, *plugintest.Proxy) {
	return plugintest.ProxiedPostgres(t)
}

// pgDB is a fresh test database: its DSN and a handle for the test.
func pgDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	dsn := plugintest.PostgresDSN(t)
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}

// inbox holds generated vehicles_status files; their records have unique
// keys, so that the type tables count every file loaded exactly.
type inbox struct {
	dir     string
	files   map[string][]byte // name: content
	records int
}

// genInbox writes n files: every bigEvery-th one big (bigRecords records
// of about 500 bytes: from 550 records on, past the small-file size, so
// loaded alone and streamed), the others small (smallRecords records of
// about 130 bytes, loaded in groups). bigEvery 0: none big.
func genInbox(t *testing.T, n, bigEvery, bigRecords, smallRecords int) *inbox {
	t.Helper()
	in := &inbox{dir: filepath.Join(t.TempDir(), "inbox"), files: map[string][]byte{}}
	if err := os.MkdirAll(in.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		records, status := smallRecords, "parked with the engine off and the doors locked"
		if bigEvery > 0 && i%bigEvery == 0 {
			records, status = bigRecords, strings.Repeat("driving along with every sensor reporting; ", 9)
		}
		var b strings.Builder
		b.WriteString(`{"vehicle_status": [`)
		for k := range records {
			if k > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, `{"vehicle_id": "car-%04d-%05d", "report_time": "2020-01-01T00:00:00Z", "status": %q}`, i, k, status)
		}
		b.WriteString("]}\n")
		name := fmt.Sprintf("vehicles_status_%d.json", 1600000000+i)
		in.files[name] = []byte(b.String())
		in.records += records
		if err := os.WriteFile(filepath.Join(in.dir, name), in.files[name], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

// config writes a pipeline reading in.dir (moving loaded files to
// processed/) into output, a YAML flow mapping.
func (in *inbox) config(t *testing.T, output string) string {
	t.Helper()
	abs, _ := filepath.Abs("../../schemas")
	path := filepath.Join(filepath.Dir(in.dir), "carpipe.yaml")
	cfg := fmt.Sprintf(`version: 1
name: scale
schemas: %q
inputs:
  - {name: inbox, type: dir, path: %q, on_success: "move:processed", on_failure: "move:failed"}
outputs:
  - %s
`, abs, in.dir, output)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func pgOutput(dsn string) string { return fmt.Sprintf("{name: db, type: postgres, dsn: %q}", dsn) }

func scalar(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// consistent checks what must hold at any moment, even right after a
// kill: every ledger row has exactly its records (no partial file), every
// moved file is in the ledger (no move before the commit), and every file
// still in the inbox is byte for byte what was put there. It returns how
// many files the ledger holds as loaded.
func (in *inbox) consistent(t *testing.T, db *sql.DB) int {
	t.Helper()
	return in.check(t, db, false)
}

// afterKill is consistent for a process killed at any moment: a move it
// stopped half-way (the file linked into processed/, the inbox name not yet
// removed: one file under two names) is allowed, and the next run ends it.
func (in *inbox) afterKill(t *testing.T, db *sql.DB) int {
	t.Helper()
	return in.check(t, db, true)
}

func (in *inbox) check(t *testing.T, db *sql.DB, halfMoves bool) int {
	t.Helper()
	loaded := map[string]bool{}
	type row struct {
		id              int64
		inserted, total int
	}
	ledger := map[string]row{}
	rows, err := db.Query(`SELECT id, path, records_inserted, records_total FROM files WHERE status = 'processed'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var path string
		var r row
		if err := rows.Scan(&r.id, &path, &r.inserted, &r.total); err != nil {
			t.Fatal(err)
		}
		if loaded[path] {
			t.Errorf("%s is in the ledger twice", path)
		}
		loaded[path] = true
		ledger[path] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for path, r := range ledger {
		n := stored(t, db, fmt.Sprintf("_file_id = %d", r.id))
		if r.inserted != n || r.total != n || bytes.Count(in.files[path], []byte(`"vehicle_id"`)) != n {
			t.Errorf("%s: ledger says %d inserted of %d, %d records stored", path, r.inserted, r.total, n)
		}
	}
	if n := scalar(t, db, "SELECT count(*) FROM files WHERE status <> 'processed'"); n != 0 {
		t.Errorf("%d files failed", n)
	}
	sum := 0
	for p := range loaded {
		sum += bytes.Count(in.files[p], []byte(`"vehicle_id"`))
	}
	if n := stored(t, db, ""); n != sum {
		t.Errorf("%d records stored, the loaded files hold %d", n, sum)
	}
	for name, want := range in.files {
		moved, errMoved := os.ReadFile(filepath.Join(in.dir, "processed", name))
		here, errHere := os.ReadFile(filepath.Join(in.dir, name))
		switch {
		case errMoved == nil && errHere == nil && !(halfMoves && loaded[name] && sameFile(filepath.Join(in.dir, "processed", name), filepath.Join(in.dir, name))):
			t.Errorf("%s is both in the inbox and in processed/", name)
		case errMoved == nil && errHere == nil:
			t.Logf("%s: a move stopped half-way", name)
		case errMoved == nil:
			if !loaded[name] {
				t.Errorf("%s was moved but is not in the ledger", name)
			}
			if !bytes.Equal(moved, want) {
				t.Errorf("processed/%s changed", name)
			}
		case errHere == nil:
			if !bytes.Equal(here, want) {
				t.Errorf("%s changed in the inbox", name)
			}
		default:
			t.Errorf("%s is gone", name)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(in.dir, "processed")); len(entries) > len(loaded) {
		t.Errorf("%d files in processed/ for %d loaded", len(entries), len(loaded))
	}
	return len(loaded)
}

// loadedInInbox counts the files the ledger holds as loaded that are still
// in the inbox: a run died between their commit and their move.
func (in *inbox) loadedInInbox(t *testing.T, db *sql.DB) int {
	t.Helper()
	rows, err := db.Query("SELECT path FROM files WHERE status = 'processed'")
	if err != nil {
		return 0 // no table yet: nothing loaded
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(in.dir, p)); err == nil {
			n++
		}
	}
	return n
}

// complete checks that every file was loaded once and moved.
func (in *inbox) complete(t *testing.T, db *sql.DB) {
	t.Helper()
	if n := in.consistent(t, db); n != len(in.files) {
		t.Fatalf("%d of %d files loaded", n, len(in.files))
	}
	if n := stored(t, db, ""); n != in.records {
		t.Fatalf("%d records, want %d", n, in.records)
	}
	if n := scalar(t, db, "SELECT count(*) FROM claims"); n != 0 {
		t.Fatalf("%d leases left", n)
	}
}

// copyFile drops a file into a watched folder as uploaders should: under
// a hidden name, renamed when complete.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(to), "."+filepath.Base(to)+".part")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
