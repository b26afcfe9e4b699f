package main

// TestHostile runs the hostile-input corpus of testdata/hostile: each case
// folder's case.yaml says what a run must make of its files. See
// testdata/hostile/README.md for the format.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/plugintest"
	"github.com/carpipe/carpipe/plugins/store"
	"github.com/carpipe/carpipe/schemas"
)

const hostileDir = "../../testdata/hostile"

// hostileChild, when set, makes TestHostile run its cases in this process;
// otherwise every case/backend runs in a child process of the test binary,
// so that a crash (a stack overflow is not recoverable) or a hang fails
// that case alone.
const hostileChild = "CARPIPE_HOSTILE_CHILD"

// runTimeout bounds one carpipe run: a run blocked on a FIFO must fail the
// case, not hang the suite.
const runTimeout = 60 * time.Second

// hostileCase is one case.yaml.
type hostileCase struct {
	What    string                 `yaml:"what"`
	Exit    *int                   `yaml:"exit"`
	Input   hostileInput           `yaml:"input"`
	Schemas string                 `yaml:"schemas"`
	Files   map[string]expectation `yaml:"files"`
	Make    []makeEntry            `yaml:"make"`
	Records *recordCounts          `yaml:"records"`
	Stderr  []string               `yaml:"stderr"`

	name   string
	dir    string
	expect map[string]expectation // every file the case puts in the inbox
}

// hostileInput are the input options a case sets; unset ones are the
// harness's defaults.
type hostileInput struct {
	Recursive     bool   `yaml:"recursive"`
	OnSuccess     string `yaml:"on_success"`
	OnFailure     string `yaml:"on_failure"`
	MaxFileSize   string `yaml:"max_file_size"`
	MaxRecordSize string `yaml:"max_record_size"`
	OnUnmatched   string `yaml:"on_unmatched"`
}

// expectation is a file's outcome in the first run, and substrings of its
// reason; "none" is a file no run may list (the run stops before listing,
// or the file is not the input's to list).
type expectation struct {
	Outcome string     `yaml:"outcome"`
	Reason  substrings `yaml:"reason"`
}

type substrings []string

func (s *substrings) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = []string{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

type recordCounts struct {
	Inserted  int64 `yaml:"inserted"`
	Duplicate int64 `yaml:"duplicate"`
	Rejected  int64 `yaml:"rejected"`
}

// makeEntry is an inbox entry git cannot hold, or should not: made at
// test time.
type makeEntry struct {
	Kind    string     `yaml:"kind"`    // file | repeat | longpath | fifo | symlink
	Path    string     `yaml:"path"`    // relative to the inbox, slash-separated
	PathGo  string     `yaml:"path_go"` // the same as the body of a Go string literal: "odd-\xff.json"
	Content string     `yaml:"content"` // file, longpath
	Parts   []part     `yaml:"parts"`   // repeat
	Length  int        `yaml:"length"`  // longpath: the least length of the path, in bytes
	Target  string     `yaml:"target"`  // symlink
	Outcome string     `yaml:"outcome"`
	Reason  substrings `yaml:"reason"`

	rel string // the path made
}

// part is text written times times (default once); "{n}" in it becomes
// the repetition's index.
type part struct {
	Text  string `yaml:"text"`
	Times int    `yaml:"times"`
}

var hostileOutcomes = append([]string{"none"}, plugins.Outcomes...)

func loadHostile(t *testing.T) []*hostileCase {
	t.Helper()
	entries, err := os.ReadDir(hostileDir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []*hostileCase
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := readCase(filepath.Join(hostileDir, e.Name()))
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		cases = append(cases, c)
	}
	if len(cases) == 0 && !t.Failed() {
		t.Fatal("no case in " + hostileDir)
	}
	return cases
}

func readCase(dir string) (*hostileCase, error) {
	f, err := os.Open(filepath.Join(dir, "case.yaml"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := yaml.NewDecoder(f)
	d.KnownFields(true)
	c := &hostileCase{name: filepath.Base(dir), dir: dir}
	if err := d.Decode(c); err != nil {
		return nil, fmt.Errorf("case.yaml: %w", err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("case.yaml: %w", err)
	}
	return c, nil
}

// check makes sure case.yaml and files/ agree, and fills c.expect.
func (c *hostileCase) check() error {
	if strings.TrimSpace(c.What) == "" {
		return errors.New("what: say what the case tests")
	}
	if c.Exit == nil {
		return errors.New("exit: the expected exit code is required")
	}
	if c.Schemas != "" {
		if _, err := os.Stat(filepath.Join(c.dir, c.Schemas)); err != nil {
			return fmt.Errorf("schemas: %w", err)
		}
	}
	c.expect = map[string]expectation{}
	committed, err := listTree(filepath.Join(c.dir, "files"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, p := range committed {
		if _, ok := c.Files[p]; !ok {
			return fmt.Errorf("files/%s has no entry under files:", p)
		}
	}
	for p, x := range c.Files {
		if !slices.Contains(committed, p) {
			return fmt.Errorf("files: %s is not in files/", p)
		}
		c.expect[p] = x
	}
	for i := range c.Make {
		m := &c.Make[i]
		if err := m.resolve(); err != nil {
			return fmt.Errorf("make %d: %w", i, err)
		}
		if _, dup := c.expect[m.rel]; dup {
			return fmt.Errorf("make %d: %q is made twice", i, m.rel)
		}
		c.expect[m.rel] = expectation{m.Outcome, m.Reason}
	}
	if len(c.expect) == 0 {
		return errors.New("no file: give files/ or make:")
	}
	for p, x := range c.expect {
		if !slices.Contains(hostileOutcomes, x.Outcome) {
			return fmt.Errorf("%q: outcome %q: want one of %v", p, x.Outcome, hostileOutcomes)
		}
		if *c.Exit == exitUsage && x.Outcome != "none" {
			return fmt.Errorf("%q: a run that stops on its config (exit 2) lists no file: its outcome must be none", p)
		}
	}
	return nil
}

func (m *makeEntry) resolve() error {
	p := m.Path
	if m.PathGo != "" {
		if p != "" {
			return errors.New("give path or path_go, not both")
		}
		var err error
		if p, err = strconv.Unquote(`"` + m.PathGo + `"`); err != nil {
			return fmt.Errorf("path_go: %w", err)
		}
	}
	if p == "" || strings.HasPrefix(p, "/") || slices.Contains(strings.Split(p, "/"), "..") {
		return fmt.Errorf("path %q: want a path inside the inbox", p)
	}
	switch m.Kind {
	case "file", "fifo":
	case "repeat":
		if len(m.Parts) == 0 {
			return errors.New("repeat: parts are required")
		}
	case "longpath":
		if m.Length <= len(p) {
			return errors.New("longpath: length must exceed the file name's")
		}
		// Folders of 200 bytes until the path is long enough.
		for i := 0; len(p) < m.Length; i++ {
			p = fmt.Sprintf("%03d%s/%s", i, strings.Repeat("d", 197), p)
		}
	case "symlink":
		if m.Target == "" {
			return errors.New("symlink: target is required")
		}
	default:
		return fmt.Errorf("kind %q: want file, repeat, longpath, fifo or symlink", m.Kind)
	}
	if m.Outcome == "" {
		return errors.New("outcome is required")
	}
	m.rel = p
	return nil
}

// listTree lists the regular files under dir, slash-separated.
func listTree(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

func TestHostile(t *testing.T) {
	cases := loadHostile(t)
	child := os.Getenv(hostileChild) != ""
	pool := make(chan struct{}, max(8, 4*runtime.GOMAXPROCS(0)))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, b := range backends {
				t.Run(b.name, func(t *testing.T) {
					if child {
						// A runaway recursion fails at 256 MiB of stack
						// rather than 1 GiB: sooner, and lighter on a
						// machine running other cases.
						debug.SetMaxStack(256 << 20)
						c.run(t, b)
						return
					}
					// Started before t.Parallel, so that every child is
					// queued at once: they mostly wait on the database, and
					// -test.parallel would run only as many as there are CPUs.
					done := startChild(t.Name(), pool)
					t.Parallel()
					if err := <-done; err != nil {
						t.Fatal(err)
					}
				})
			}
		})
	}
}

// startChild runs the subtest name in a child process, pool limiting how
// many run at once, and reports its failure with its output.
func startChild(name string, pool chan struct{}) <-chan error {
	done := make(chan error, 1)
	go func() {
		pool <- struct{}{}
		defer func() { <-pool }()
		var pattern []string
		for _, s := range strings.Split(name, "/") {
			pattern = append(pattern, "^"+regexp.QuoteMeta(s)+"$")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*runTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run="+strings.Join(pattern, "/"), "-test.v", "-test.count=1", "-test.timeout=10m")
		cmd.Env = append(os.Environ(), hostileChild+"=1")
		out, err := cmd.CombinedOutput()
		switch {
		case ctx.Err() != nil:
			done <- fmt.Errorf("the case did not finish in %s\n%s", 3*runTimeout, clip(string(out)))
		case err != nil || !bytes.Contains(out, []byte("--- PASS: "+name+" ")):
			done <- fmt.Errorf("child process: %v\n%s", err, clip(string(out)))
		default:
			done <- nil
		}
	}()
	return done
}

// clip keeps the head and tail of a long output, such as a crash's
// goroutine dump.
func clip(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= 60 {
		return s
	}
	return strings.Join(lines[:40], "\n") + fmt.Sprintf("\n... %d lines ...\n", len(lines)-55) + strings.Join(lines[len(lines)-15:], "\n")
}

// hostileRun is one case set up for one backend.
type hostileRun struct {
	c       *hostileCase
	t       *testing.T
	dir     string
	inbox   string
	outside string
	config  string
	db      *sql.DB
	digests map[string][32]byte // the regular files put in the inbox
}

// observed is what one run showed.
type observed struct {
	code           int
	stdout, stderr string
	finished       map[string]any   // the "run finished" log event; nil if none
	files          map[string]*seen // per path as logged
}

type seen struct {
	outcomes []string
	reason   string
}

func (c *hostileCase) run(t *testing.T, b backend) {
	r := c.setup(t, b)
	first := r.runOnce("first run")
	r.check("first run", first, *c.Exit, c.expect, c.Records)
	if first.finished == nil && *c.Exit != exitUsage {
		return // it never ran: the rest would only repeat that
	}
	second := r.runOnce("second run")
	zero := &recordCounts{}
	if *c.Exit == exitUsage {
		zero = nil
	}
	r.check("second run", second, c.secondExit(), c.secondOutcomes(), zero)
	r.checkBytes()
	if *c.Exit != exitUsage {
		r.checkQueryable()
	}
}

func (c *hostileCase) setup(t *testing.T, b backend) *hostileRun {
	dir := t.TempDir()
	r := &hostileRun{c: c, t: t, dir: dir, inbox: filepath.Join(dir, "inbox"), outside: filepath.Join(dir, "outside"), digests: map[string][32]byte{}}
	for _, d := range []string{r.inbox, r.outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The outside folder holds one file no run may touch.
	if err := os.WriteFile(filepath.Join(r.outside, "untouched.txt"), []byte("outside the input's root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	committed, _ := listTree(filepath.Join(c.dir, "files"))
	for _, p := range committed {
		data, err := os.ReadFile(filepath.Join(c.dir, "files", filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		r.write(p, func(w io.Writer) error { _, err := w.Write(data); return err })
	}
	for _, m := range c.Make {
		r.make(m)
	}
	out, db := b.output(t)
	r.db = db
	schemaDir, _ := filepath.Abs("../../schemas")
	if c.Schemas != "" {
		schemaDir, _ = filepath.Abs(filepath.Join(c.dir, c.Schemas))
	}
	in := map[string]any{"name": "inbox", "type": "dir", "path": "inbox",
		"on_success": or(c.Input.OnSuccess, "move:processed"), "on_failure": or(c.Input.OnFailure, "move:failed")}
	if c.Input.Recursive {
		in["recursive"] = true
	}
	for k, v := range map[string]string{"max_file_size": c.Input.MaxFileSize, "max_record_size": c.Input.MaxRecordSize, "on_unmatched": c.Input.OnUnmatched} {
		if v != "" {
			in[k] = v
		}
	}
	var output map[string]any
	if err := yaml.Unmarshal([]byte(out), &output); err != nil {
		t.Fatal(err)
	}
	cfg, err := yaml.Marshal(map[string]any{"version": 1, "name": "hostile", "schemas": schemaDir,
		"inputs": []any{in}, "outputs": []any{output}})
	if err != nil {
		t.Fatal(err)
	}
	r.config = filepath.Join(dir, "carpipe.yaml")
	if err := os.WriteFile(r.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// write makes a regular file in the inbox and keeps its digest.
func (r *hostileRun) write(rel string, fill func(io.Writer) error) {
	r.t.Helper()
	p := filepath.Join(r.inbox, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		r.t.Fatal(err)
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.digests[rel] = [32]byte(h.Sum(nil))
}

func (r *hostileRun) make(m makeEntry) {
	r.t.Helper()
	p := filepath.Join(r.inbox, filepath.FromSlash(m.rel))
	switch m.Kind {
	case "file", "longpath":
		r.write(m.rel, func(w io.Writer) error { _, err := io.WriteString(w, m.Content); return err })
	case "repeat":
		r.write(m.rel, func(w io.Writer) error {
			for _, pt := range m.Parts {
				before, after, numbered := strings.Cut(pt.Text, "{n}")
				for i := range max(pt.Times, 1) {
					io.WriteString(w, before)
					if numbered {
						io.WriteString(w, strconv.Itoa(i))
						io.WriteString(w, after)
					}
				}
			}
			return nil
		})
	case "fifo":
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			r.t.Fatal(err)
		}
	case "symlink":
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Symlink(m.Target, p); err != nil {
			r.t.Fatal(err)
		}
	}
}

// runOnce runs carpipe in this process, with a JSON log of every level.
func (r *hostileRun) runOnce(label string) observed {
	r.t.Helper()
	o := observed{}
	o.code, o.stdout, o.stderr = r.carpipe(label, "run", "-c", r.config, "--quiet", "--log-format", "json", "--log-level", "debug")
	o.files = map[string]*seen{}
	last := map[string]string{} // the message that gave each path its outcome
	for _, line := range strings.Split(o.stderr, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			r.t.Errorf("%s: log line is not JSON: %v\n%s", label, err, line)
			continue
		}
		msg, _ := ev["msg"].(string)
		if msg == "run finished" {
			if o.finished != nil {
				r.t.Errorf("%s: two \"run finished\" events", label)
			}
			o.finished = ev
			continue
		}
		p, ok := ev["path"].(string)
		if !ok {
			continue
		}
		outcome, override := logOutcome(msg, ev)
		if outcome == "" {
			continue
		}
		s := o.files[p]
		if s == nil {
			s = &seen{}
			o.files[p] = s
		}
		switch {
		case override && len(s.outcomes) > 0:
			// A failed action turns the file's outcome into left.
			s.outcomes[len(s.outcomes)-1] = outcome
		default:
			if len(s.outcomes) > 0 {
				r.t.Errorf("%s: %q has a second outcome: %q after %q", label, p, msg, last[p])
			}
			s.outcomes = append(s.outcomes, outcome)
		}
		last[p] = msg
		for _, k := range []string{"reason", "action", "error"} {
			if v, ok := ev[k].(string); ok {
				s.reason = strings.TrimSpace(s.reason + " " + v)
			}
		}
	}
	return o
}

// logOutcome maps a per-file log message to an outcome; override is true
// for the failed action that makes a file left.
func logOutcome(msg string, ev map[string]any) (outcome string, override bool) {
	switch {
	case msg == "file loaded":
		return plugins.OutcomeProcessed, false
	case strings.HasPrefix(msg, "file failed"):
		if reason, _ := ev["reason"].(string); strings.HasPrefix(reason, plugins.ErrAmbiguous.Error()) {
			return plugins.OutcomeAmbiguous, false
		}
		return plugins.OutcomeFailed, false
	case strings.HasPrefix(msg, "file matches no file type"):
		return plugins.OutcomeUnmatched, false
	case strings.HasPrefix(msg, "file action failed"):
		return plugins.OutcomeLeft, true
	case strings.Contains(msg, "claimed by another process"):
		return plugins.OutcomeHeld, false
	case strings.Contains(msg, "skipped") || msg == "file already loaded" || strings.Contains(msg, "too recent") ||
		strings.Contains(msg, "changed while it was read"):
		return plugins.OutcomeSkipped, false
	}
	return "", false
}

func (r *hostileRun) carpipe(label string, args ...string) (int, string, string) {
	r.t.Helper()
	var out, errb plugintest.Buffer
	done := make(chan int, 1)
	go func() { done <- Run(args, strings.NewReader(""), &out, &errb) }()
	select {
	case code := <-done:
		return code, out.String(), errb.String()
	case <-time.After(runTimeout):
		r.t.Fatalf("%s: carpipe %s did not finish in %s (hung?)\nstderr so far:\n%s", label, args[0], runTimeout, clip(errb.String()))
	}
	return 0, "", ""
}

// secondOutcomes derives the second run's: files moved away are not
// listed again, files kept are skipped when loaded and fail again when
// failed, and the others end as before.
func (c *hostileCase) secondOutcomes() map[string]expectation {
	out := map[string]expectation{}
	for p, x := range c.expect {
		switch x.Outcome {
		case plugins.OutcomeProcessed:
			if moves(or(c.Input.OnSuccess, "move:processed")) {
				continue
			}
			x = expectation{Outcome: plugins.OutcomeSkipped}
		case plugins.OutcomeFailed, plugins.OutcomeAmbiguous:
			if moves(or(c.Input.OnFailure, "move:failed")) {
				continue
			}
		}
		out[p] = x
	}
	return out
}

func (c *hostileCase) secondExit() int {
	if *c.Exit == exitUsage || *c.Exit == exitFatal {
		return *c.Exit
	}
	for _, x := range c.secondOutcomes() {
		if plugins.Troubled(x.Outcome) || x.Outcome == plugins.OutcomeUnmatched && c.Input.OnUnmatched == "fail" {
			return exitPartial
		}
	}
	return exitOK
}

func moves(action string) bool { return strings.HasPrefix(action, "move:") }

// check compares a run with the expected outcomes.
func (r *hostileRun) check(label string, o observed, exit int, want map[string]expectation, records *recordCounts) {
	t := r.t
	t.Helper()
	if o.code != exit {
		t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", label, o.code, exit, o.stdout, clip(o.stderr))
	}
	for _, s := range r.c.Stderr {
		if !strings.Contains(o.stderr, s) {
			t.Errorf("%s: stderr lacks %q:\n%s", label, s, clip(o.stderr))
		}
	}
	if !utf8.ValidString(o.stderr) {
		t.Errorf("%s: stderr is not valid UTF-8", label)
	}
	if exit == exitUsage {
		if o.finished != nil || len(o.files) > 0 {
			t.Errorf("%s: the run went on, listing %d file(s); want it stopped on its config", label, len(o.files))
		}
		return
	}
	if o.finished == nil {
		t.Errorf("%s: no \"run finished\" event", label)
		return
	}

	// Every file the case lists ends in its outcome, exactly once, and the
	// run reports no other.
	logged := map[string]string{} // log key → case path
	for p := range r.c.expect {
		logged[logKey(p)] = p
	}
	counts := map[string]int64{}
	for p, x := range want {
		if x.Outcome == "none" {
			continue
		}
		counts[x.Outcome]++
		s := o.files[logKey(p)]
		if s == nil {
			t.Errorf("%s: %q: no outcome logged, want %s", label, p, x.Outcome)
			continue
		}
		if got := s.outcomes[len(s.outcomes)-1]; got != x.Outcome {
			t.Errorf("%s: %q: outcome %s, want %s (reason %q)", label, p, got, x.Outcome, s.reason)
		}
		for _, sub := range x.Reason {
			if !strings.Contains(s.reason, sub) {
				t.Errorf("%s: %q: reason %q lacks %q", label, p, s.reason, sub)
			}
		}
	}
	for k, s := range o.files {
		p, known := logged[k]
		if !known {
			t.Errorf("%s: the run reports %q (%v), which the case does not list", label, k, s.outcomes)
			continue
		}
		if x, ok := want[p]; !ok || x.Outcome == "none" {
			t.Errorf("%s: %q was listed (%v); want it not listed", label, p, s.outcomes)
		}
	}
	var total int64
	for _, oc := range plugins.Outcomes {
		got := number(o.finished["files_"+oc])
		total += counts[oc]
		if got != counts[oc] {
			t.Errorf("%s: run finished with files_%s=%d, want %d", label, oc, got, counts[oc])
		}
	}
	if got := number(o.finished["files"]); got != total {
		t.Errorf("%s: run finished with files=%d, want %d", label, got, total)
	}
	if records != nil {
		for k, v := range map[string]int64{"records_inserted": records.Inserted, "records_duplicate": records.Duplicate, "records_rejected": records.Rejected} {
			if got := number(o.finished[k]); got != v {
				t.Errorf("%s: run finished with %s=%d, want %d", label, k, got, v)
			}
		}
	}
	r.checkRunsRow(label, o.finished)
	r.checkLedger(label, number(o.finished["run"]), want)
}

func number(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// logKey is a path as the JSON log writes it: each byte that is not
// UTF-8 becomes U+FFFD.
func logKey(p string) string {
	var b strings.Builder
	for len(p) > 0 {
		r, n := utf8.DecodeRuneInString(p)
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(p[:n])
		}
		p = p[n:]
	}
	return b.String()
}

// checkRunsRow compares the ledger's runs row, as `carpipe runs` prints
// it, with the end-of-run event.
func (r *hostileRun) checkRunsRow(label string, finished map[string]any) {
	t := r.t
	t.Helper()
	code, out, errs := r.carpipe(label, "runs", "-c", r.config, "--format", "json", "-n", "1")
	if code != exitOK {
		t.Errorf("%s: carpipe runs: exit %d\n%s", label, code, errs)
		return
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
		t.Errorf("%s: carpipe runs: %v\n%s", label, err, out)
		return
	}
	row := rows[0]
	if number(row["id"]) != number(finished["run"]) {
		t.Errorf("%s: newest run is %v, the log says %v", label, row["id"], finished["run"])
	}
	for _, k := range append(outcomeKeys(), "records_inserted", "records_duplicate", "records_rejected") {
		if number(row[k]) != number(finished[k]) {
			t.Errorf("%s: runs row %s=%v, run finished event %v", label, k, row[k], finished[k])
		}
	}
	if row["status"] != finished["status"] {
		t.Errorf("%s: runs row status %v, run finished event %v", label, row["status"], finished["status"])
	}
}

func outcomeKeys() []string {
	var out []string
	for _, o := range plugins.Outcomes {
		out = append(out, "files_"+o)
	}
	return out
}

// ledgerRow is one row of the files table.
type ledgerRow struct {
	path, status, reason, location string
}

func (r *hostileRun) ledger(where string) []ledgerRow {
	r.t.Helper()
	rows, err := r.db.Query("SELECT path, status, COALESCE(error, ''), COALESCE(location, '') FROM files " + where + " ORDER BY id")
	if err != nil {
		r.t.Fatalf("files ledger: %v", err)
	}
	defer rows.Close()
	var out []ledgerRow
	for rows.Next() {
		var l ledgerRow
		if err := rows.Scan(&l.path, &l.status, &l.reason, &l.location); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// checkLedger compares the run's rows of the files table with the
// outcomes: a row for each file loaded or failed, the reason with it.
func (r *hostileRun) checkLedger(label string, run int64, want map[string]expectation) {
	t := r.t
	t.Helper()
	byPath := map[string][]ledgerRow{}
	for _, l := range r.ledger(fmt.Sprintf("WHERE run_id = %d", run)) {
		byPath[l.path] = append(byPath[l.path], l)
		if !utf8.ValidString(l.reason) || strings.ContainsAny(l.reason, "\r\n") {
			t.Errorf("%s: %q: ledger reason is not one line of UTF-8: %q", label, l.path, l.reason)
		}
	}
	for p, x := range want {
		key := store.PathText(p)
		rows := byPath[key]
		delete(byPath, key)
		var status string
		switch x.Outcome {
		case plugins.OutcomeProcessed:
			status = plugins.StatusProcessed
		case plugins.OutcomeFailed, plugins.OutcomeAmbiguous:
			status = plugins.StatusFailed
		case plugins.OutcomeLeft:
			status = "any"
		}
		switch {
		case status == "" && len(rows) > 0:
			t.Errorf("%s: %q (%s) has ledger rows: %v", label, p, x.Outcome, rows)
		case status == "":
		case status == "any" && len(rows) > 1:
			t.Errorf("%s: %q (left) has %d ledger rows: %v", label, p, len(rows), rows)
		case status == "any":
			// Left once loaded, it has no new row: the ledger knew it.
		case len(rows) != 1:
			t.Errorf("%s: %q (%s) has %d ledger rows, want 1: %v", label, p, x.Outcome, len(rows), rows)
		case rows[0].status != status:
			t.Errorf("%s: %q: ledger status %s, want %s", label, p, rows[0].status, status)
		case rows[0].status == plugins.StatusFailed:
			for _, sub := range x.Reason {
				if !strings.Contains(rows[0].reason, sub) {
					t.Errorf("%s: %q: ledger reason %q lacks %q", label, p, rows[0].reason, sub)
				}
			}
		}
	}
	for p, rows := range byPath {
		t.Errorf("%s: ledger rows for %q, which the case does not list: %v", label, p, rows)
	}
}

// checkBytes: nothing is lost or changed. Every file put in the inbox is
// where its last action put it, with its bytes, and nothing outside the
// inbox changed.
func (r *hostileRun) checkBytes() {
	t := r.t
	t.Helper()
	where := map[string]string{}
	if *r.c.Exit != exitUsage {
		for _, l := range r.ledger("") {
			if l.location != "" {
				where[l.path] = l.location
			}
		}
	}
	got, err := listTree(r.inbox)
	if err != nil {
		t.Fatal(err)
	}
	// The ledger holds locations as text: map them back to names.
	named := map[string]string{}
	for _, p := range got {
		named[store.PathText(p)] = p
	}
	var want []string
	for p, sum := range r.digests {
		at := p
		if loc, ok := where[store.PathText(p)]; ok {
			if at, ok = named[loc]; !ok {
				at = loc
			}
		}
		want = append(want, at)
		data, err := os.ReadFile(filepath.Join(r.inbox, filepath.FromSlash(at)))
		if err != nil {
			t.Errorf("%q: not at %q, where the ledger (or its outcome) puts it: %v", p, at, err)
			continue
		}
		if sha256.Sum256(data) != sum {
			t.Errorf("%q: its bytes changed (now at %q)", p, at)
		}
	}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("inbox holds %q, want %q", got, want)
	}
	for _, m := range r.c.Make {
		if m.Kind != "fifo" && m.Kind != "symlink" {
			continue
		}
		st, err := os.Lstat(filepath.Join(r.inbox, filepath.FromSlash(m.rel)))
		if err != nil || m.Kind == "fifo" && st.Mode().Type() != fs.ModeNamedPipe || m.Kind == "symlink" && st.Mode().Type() != fs.ModeSymlink {
			t.Errorf("%q (%s) is gone or changed: %v", m.rel, m.Kind, err)
		}
	}
	outside, _ := listTree(r.outside)
	data, _ := os.ReadFile(filepath.Join(r.outside, "untouched.txt"))
	if !slices.Equal(outside, []string{"untouched.txt"}) || string(data) != "outside the input's root\n" {
		t.Errorf("the folder outside the input's root changed: %q", outside)
	}
}

// checkQueryable: every typed table reads whole, and every stored reason
// is valid UTF-8.
func (r *hostileRun) checkQueryable() {
	t := r.t
	t.Helper()
	dir := "../../schemas"
	if r.c.Schemas != "" {
		dir = filepath.Join(r.c.dir, r.c.Schemas)
	}
	set, err := schemas.Load(dir, schemas.Options{})
	if err != nil {
		t.Fatalf("schemas: %v", err)
	}
	for _, v := range set.Tables() {
		r.readAll(`SELECT * FROM "` + v.Name + `"`)
	}
	for _, q := range []string{"SELECT COALESCE(error, '') FROM files", "SELECT CAST(errors AS TEXT) FROM rejects"} {
		for _, s := range r.readAll(q) {
			if !utf8.Valid(s) {
				t.Errorf("%s: %q is not UTF-8", q, s)
			}
		}
	}
}

// readAll reads every row and column of a query, returning the first
// column's values.
func (r *hostileRun) readAll(q string) [][]byte {
	t := r.t
	t.Helper()
	rows, err := r.db.Query(q)
	if err != nil {
		t.Errorf("%s: %v", q, err)
		return nil
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]byte
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Errorf("%s: %v", q, err)
			return out
		}
		out = append(out, bytes.Clone(vals[0]))
	}
	if err := rows.Err(); err != nil {
		t.Errorf("%s: %v", q, err)
	}
	return out
}
