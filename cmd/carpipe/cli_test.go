package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no args", nil, exitUsage, "Usage:"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"unknown flag", []string{"run", "--nope"}, exitUsage, "unknown flag: --nope"},
		{"no config", []string{"run"}, exitUsage, "no config"},
		{"missing file", []string{"run", "-c", filepath.Join(dir, "none.yaml")}, exitUsage, "none.yaml"},
		{"bad yaml", []string{"run", "-c", write("bad.yaml", "version: 1\nname: x\ninputs: [\n")}, exitUsage, "bad.yaml:"},
		{"unknown key", []string{"run", "-c", write("key.yaml", "version: 1\nname: x\nfoo: 1\n")}, exitUsage, `key.yaml:3:1: unknown key "foo"`},
		{"unknown type", []string{"run", "-c", write("type.yaml", "version: 1\nname: x\nschemas: "+abs("../../schemas")+"\ninputs:\n  - {name: a, type: gopher}\noutputs:\n  - {name: b, type: sqlite, path: x.db}\n")}, exitUsage, `unknown input type "gopher" (registered: [`},
		{"two ledgers", []string{"run", "-c", write("two.yaml", "version: 1\nname: x\nschemas: "+abs("../../schemas")+"\ninputs:\n  - {name: a, type: dir, path: .}\noutputs:\n  - {name: b, type: sqlite, path: x.db}\n  - {name: c, type: sqlite, path: y.db}\n")}, exitUsage, "only one database output"},
		{"help", []string{"help"}, exitOK, ""},
		{"version", []string{"version"}, exitOK, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := carpipe(t, c.args...)
			wantCode(t, code, c.code, out, errs)
			wantContains(t, out+errs, c.want)
		})
	}
	_, out, _ := carpipe(t, "version")
	if !strings.HasPrefix(out, "carpipe ") {
		t.Errorf("version printed %q", out)
	}
	_, out, _ = carpipe(t, "help")
	wantContains(t, out, "run", "migrate", "Exit codes")
}

func abs(p string) string {
	a, _ := filepath.Abs(p)
	return a
}

// TestDatabaseDown: a server that does not answer is fatal, names the
// server, never shows the password and moves no file.
func TestDatabaseDown(t *testing.T) {
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	copyDir(t, "../../testdata/sample", inbox)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`version: 1
name: down
schemas: `+abs("../../schemas")+`
inputs:
  - {name: inbox, type: dir, path: inbox, on_success: "move:processed", on_failure: "move:failed"}
outputs:
  - name: db
    type: postgres
    host: 127.0.0.1
    port: 1
    user: carpipe
    password: ${PASS}
    database: nowhere
    connect_timeout: 2s
`), 0o644)
	t.Setenv("PASS", "Sup3r-Secret-Pw")
	code, out, errs := carpipe(t, "run", "-c", cfg)
	wantCode(t, code, exitFatal, out, errs)
	wantContains(t, errs, "cannot connect to postgres at 127.0.0.1:1 database nowhere as user carpipe")
	if strings.Contains(out+errs, "Sup3r-Secret-Pw") {
		t.Fatalf("password leaked:\n%s%s", out, errs)
	}
	entries, _ := os.ReadDir(inbox)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 6 || slices.Contains(names, "processed") || slices.Contains(names, "failed") {
		t.Fatalf("inbox changed: %v", names)
	}
}

// TestUnsetVariable names the variable and exits 2.
func TestUnsetVariable(t *testing.T) {
	os.Unsetenv("POSTGRES_HOST")
	t.Setenv("FILE_DIRECTORY", t.TempDir())
	code, out, errs := carpipe(t, "run", "-c", "../../config/pipeline.yaml")
	wantCode(t, code, exitUsage, out, errs)
	wantContains(t, errs, "POSTGRES_HOST")
}
