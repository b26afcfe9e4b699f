package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/plugins/plugintest"
)

// TestHelpAndFlags: help for every command, flags anywhere on the line,
// suggestions, completion, and flags that would change nothing refused.
func TestHelpAndFlags(t *testing.T) {
	for _, name := range []string{"run", "migrate", "validate", "check", "schemas", "runs", "files", "rejects", "reprocess", "plugins", "config", "version"} {
		code, out, errs := carpipe(t, "help", name)
		wantCode(t, code, exitOK, out, errs)
		wantContains(t, out, "Usage:\n  carpipe "+name, "Examples:\n  ", "Exit codes")
		code, out2, errs := carpipe(t, name, "-h")
		wantCode(t, code, exitOK, out2, errs)
		if out2 != out {
			t.Errorf("%s -h differs from help %s", name, name)
		}
	}
	code, out, errs := carpipe(t, "--version")
	wantCode(t, code, exitOK, out, errs)
	if _, v, _ := carpipe(t, "version"); out != v || !strings.HasPrefix(out, "carpipe ") {
		t.Errorf("--version %q, version %q", out, v)
	}
	code, out, errs = carpipe(t, "rnus")
	wantCode(t, code, exitUsage, out, errs)
	wantContains(t, errs, `unknown command "rnus"`, "Did you mean this?\n\trun\n\truns\n")
	for shell, want := range map[string]string{"bash": "bash completion", "zsh": "#compdef carpipe", "fish": "complete -c carpipe"} {
		code, out, errs = carpipe(t, "completion", shell)
		wantCode(t, code, exitOK, out, errs)
		wantContains(t, out, want)
	}

	// Flags after a path are flags.
	code, out, errs = carpipe(t, "validate", "--schemas", abs("../../schemas"), abs("../../testdata/sample"), "--format", "junit")
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, `<?xml`, `tests="6"`)

	p := newPipe(t, backends[0], "../../testdata/sample", "../../schemas", "keep", "keep")
	for _, c := range []struct{ args, want string }{
		{"run -c CFG --interval 5s", "--interval has no effect without --watch"},
		{"run -c CFG --watch --quiet", "--quiet has no effect with --watch"},
		{"validate --schemas S . -v --format json", "-v has no effect with --format json"},
		{"validate -c CFG --schemas S .", "-c has no effect with --schemas and paths"},
		{"schemas -c CFG --schemas S", "-c has no effect with --schemas"},
		{"schemas --schemas S --dialect sqlite", "--dialect has no effect without --sql"},
		{"schemas --schemas S --sql --format json", "--format has no effect with --sql"},
		{"reprocess -c CFG 1 --since 1h", "--since has no effect without --failed"},
		{"runs -c CFG --format xml", `invalid argument "xml" for "--format" flag: want table or json`},
		{"runs -c CFG -format json", "long flags take two dashes: --format"},
	} {
		args := strings.Fields(strings.NewReplacer("CFG", p.config, " S", " "+abs("../../schemas")).Replace(c.args))
		code, out, errs := carpipe(t, args...)
		wantCode(t, code, exitUsage, out, errs)
		wantContains(t, errs, c.want)
	}
}

// TestFormatJSON: the commands that print data print JSON when asked.
func TestFormatJSON(t *testing.T) {
	p := newPipe(t, backends[0], "../../testdata/sample", "../../schemas", "keep", "keep")
	code, out, errs := carpipe(t, "migrate", "-c", p.config)
	wantCode(t, code, exitOK, out, errs)
	for _, c := range []struct {
		args []string
		want string // a key or value the document holds
	}{
		{[]string{"plugins"}, `"common_input_keys"`},
		{[]string{"schemas", "-c", p.config}, `"on_invalid"`},
		{[]string{"check", "-c", p.config}, `"ok": true`},
		{[]string{"reprocess", "-c", p.config, "--failed"}, `[]`},
		{[]string{"runs", "-c", p.config}, `[]`},
	} {
		code, out, errs := carpipe(t, append(c.args, "--format", "json")...)
		wantCode(t, code, exitOK, out, errs)
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("%v: not JSON: %v\n%s", c.args, err, out)
		}
		wantContains(t, out, c.want)
	}
}

// TestReadOnlyCommands: commands that only read create no folder, file
// or table; a database without carpipe's tables says to migrate.
func TestReadOnlyCommands(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "mistyped", "carpipe.db")
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
name: ro
schemas: %s
inputs:
  - {name: inbox, type: dir, path: %s}
outputs:
  - {name: db, type: sqlite, path: %s}
`, abs("../../schemas"), abs("../../testdata/sample"), missing)), 0o644)
	for _, args := range [][]string{{"runs"}, {"files"}, {"rejects", "--file", "1"}} {
		code, out, errs := carpipe(t, append(args, "-c", cfg)...)
		wantCode(t, code, exitFatal, out, errs)
		wantContains(t, errs, "no database file at "+missing, "carpipe migrate -c "+cfg)
	}
	for _, args := range [][]string{{"check"}, {"validate"}, {"schemas"}} {
		code, out, errs := carpipe(t, append(args, "-c", cfg)...)
		wantCode(t, code, exitOK, out, errs)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Fatalf("a read-only command created %s: %v", filepath.Dir(missing), err)
	}

	// An empty database file: no tables, and none made.
	os.MkdirAll(filepath.Dir(missing), 0o755)
	os.WriteFile(missing, nil, 0o644)
	code, out, errs := carpipe(t, "files", "-c", cfg)
	wantCode(t, code, exitFatal, out, errs)
	wantContains(t, errs, "the database has no carpipe tables; 'carpipe migrate -c "+cfg+"' creates")
	if st, _ := os.Stat(missing); st.Size() != 0 {
		t.Errorf("files wrote %d bytes into an empty database", st.Size())
	}
	entries, _ := os.ReadDir(filepath.Dir(missing))
	if len(entries) != 1 {
		t.Errorf("files left %d entries beside the database", len(entries))
	}
}

// TestSelectOnlyRole: runs, files and rejects work for a PostgreSQL role
// that may only SELECT.
func TestSelectOnlyRole(t *testing.T) {
	p := newPipe(t, backends[1], "../../testdata/run/bad", "../../schemas", "keep", "keep")
	code, out, errs := carpipe(t, "run", "-c", p.config)
	wantCode(t, code, exitPartial, out, errs)

	role := "carpipe_ro_" + strings.ReplaceAll(filepath.Base(t.TempDir()), "-", "")
	for _, q := range []string{"CREATE ROLE " + role + " LOGIN", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + role} {
		if _, err := p.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		p.db.Exec("DROP OWNED BY " + role)
		p.db.Exec("DROP ROLE " + role)
	})
	data, _ := os.ReadFile(p.config)
	m := dsnKey.FindSubmatch(data)
	if m == nil {
		t.Fatalf("no dsn in %s", data)
	}
	dsn, _ := strconv.Unquote(string(m[1]))
	ro := filepath.Join(filepath.Dir(p.config), "ro.yaml")
	os.WriteFile(ro, dsnKey.ReplaceAll(data, []byte("dsn: "+strconv.Quote(asUser(dsn, role)))), 0o644)

	var id int
	if err := p.db.QueryRow("SELECT min(id) FROM files WHERE status = 'failed'").Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"runs"}, {"files"}, {"rejects", "--file", fmt.Sprint(id)}} {
		code, out, errs := carpipe(t, append(args, "-c", ro)...)
		wantCode(t, code, exitOK, out, errs)
	}
}

var dsnKey = regexp.MustCompile(`dsn: ("[^"]*")`)

func asUser(dsn, user string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		u.User = url.User(user)
		return u.String()
	}
	return dsn + " user=" + user // lib/pq lets a later key win
}

// TestTLSHint: a TLS failure names sslmode, POSTGRES_SSLMODE and the default.
func TestTLSHint(t *testing.T) {
	u, err := url.Parse(plugintest.PostgresDSN(t))
	if err != nil || u.Hostname() == "" {
		t.Fatalf("want a postgres:// test DSN with a host: %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	// 127.0.0.1 is in no certificate a server has, and a server without
	// TLS fails too: verify-full fails either way.
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
name: tls
schemas: %s
inputs: [{name: in, type: dir, path: .}]
outputs: [{name: db, type: postgres, host: 127.0.0.1, port: %s, user: postgres, database: postgres, sslmode: verify-full}]
`, abs("../../schemas"), u.Port())), 0o644)
	code, out, errs := carpipe(t, "runs", "-c", cfg)
	wantCode(t, code, exitFatal, out, errs)
	wantContains(t, errs, "under sslmode=verify-full", "set sslmode (POSTGRES_SSLMODE", "the default is verify-full, or disable for a loopback host")
}

// TestPathFromEnvironment: FILE_DIRECTORY=./inbox is the working
// directory's inbox, not the config folder's.
func TestPathFromEnvironment(t *testing.T) {
	wd := t.TempDir()
	copyDir(t, "../../testdata/sample", filepath.Join(wd, "inbox"))
	cfg := abs("../../config/pipeline.yaml")
	t.Chdir(wd)
	t.Setenv("FILE_DIRECTORY", "./inbox")
	code, out, errs := carpipe(t, "validate", "-c", cfg)
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "6 files: 6 valid")
}

// TestJSONLogs: under --log-format json every line on standard error is
// a JSON object, errors included; a run ends with one "run finished"
// event; records on standard output keep it to themselves.
func TestJSONLogs(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nname: x\nfoo: 1\nbar: 2\n"), 0o644)
	for _, args := range [][]string{
		{"run", "-c", filepath.Join(dir, "none.yaml")},
		{"run", "-c", bad},
		{"run", "--nope"},
		{"frobnicate"},
	} {
		code, out, errs := carpipe(t, append(args, "--log-format", "json")...)
		if code == exitOK {
			t.Errorf("%v: exit 0", args)
		}
		lines := jsonLines(t, errs)
		if len(lines) == 0 || lines[0]["level"] != "ERROR" {
			t.Errorf("%v: stderr %q, stdout %q", args, errs, out)
		}
	}
	_, _, errs := carpipe(t, "run", "-c", bad, "--log-format", "json")
	if lines := jsonLines(t, errs); len(lines) != 2 || lines[1]["line"] != float64(4) || lines[1]["problem"] == nil {
		t.Errorf("want one object per config problem:\n%s", errs)
	}

	p := newPipe(t, backends[0], "../../testdata/sample", "../../schemas", "keep", "keep")
	data, _ := os.ReadFile(p.config)
	os.WriteFile(p.config, append(data, "  - {name: out, type: jsonl, path: \"-\"}\n"...), 0o644)
	code, out, errs := carpipe(t, "run", "-c", p.config, "--log-format", "json")
	wantCode(t, code, exitOK, out, errs)
	if recs := jsonLines(t, out); len(recs) != 60 {
		t.Errorf("stdout holds %d JSON lines, want the 60 records alone", len(recs))
	}
	var ends []map[string]any
	for _, l := range jsonLines(t, errs) {
		if l["msg"] == "run finished" {
			ends = append(ends, l)
		}
	}
	if len(ends) != 1 || ends[0]["files_processed"] != float64(6) || ends[0]["records_inserted"] != float64(60) || ends[0]["files_skipped"] != float64(0) {
		t.Errorf("run finished events: %v", ends)
	}

	// Text logs: the summary goes to standard error, beside them.
	code, out, errs = carpipe(t, "run", "-c", p.config)
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, errs, "run 2 of test: ok", "0 processed, 0 failed, 6 skipped")
	if out != "" {
		t.Errorf("a run with nothing new wrote to stdout: %q", out)
	}
}

// jsonLines parses every line of s as a JSON object.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("not a JSON object: %q", sc.Text())
			continue
		}
		out = append(out, m)
	}
	return out
}
