package docs

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins/plugintest"
)

// root is the repository, seen from this package's folder.
const root = ".."

// documents are the Markdown files whose examples must run.
func documents(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(root, "README.md")}, files...)
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// bin builds carpipe once per test binary, static and stripped as
// deploy/Dockerfile builds it, into a folder examples find first on PATH.
func bin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "carpipe-docs-"); binErr != nil {
			return
		}
		goCmd, err := exec.LookPath("go")
		if err != nil {
			goCmd = "/usr/local/go/bin/go"
		}
		cmd := exec.Command(goCmd, "build", "-ldflags", "-s -w", "-o", filepath.Join(binDir, "carpipe"), "./cmd/carpipe")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// TestExamples runs every shell example of the README and docs/, in order,
// in a copy of the repository's configs, schemas and test data, with the
// built carpipe first on PATH and POSTGRES_* naming a fresh database (the
// variables the README has the reader set). A block runs with bash -eu:
// it must exit 0, or with the codes its <!-- exit N --> comment gives. A
// console block also shows what each "$ " command prints on standard
// output; times, durations and rates aside, it must print exactly that.
// Exported variables and the current folder carry from one block to the
// next, as in a terminal. Each full config in a yaml block must pass
// carpipe check.
func TestExamples(t *testing.T) {
	dir := bin(t)
	for _, doc := range documents(t) {
		t.Run(filepath.Base(doc), func(t *testing.T) {
			t.Parallel()
			bs, err := blocks(doc)
			if err != nil {
				t.Fatal(err)
			}
			var s *session
			for _, b := range bs {
				if !b.shell() && !fullConfig(b) || b.notRun != "" {
					continue
				}
				if s == nil {
					s = newSession(t, dir)
				}
				switch {
				case fullConfig(b):
					s.checkConfig(b)
				case b.lang == "console":
					s.console(b)
				default:
					s.script(b)
				}
			}
		})
	}
}

// TestExamplesAccounted fails when a shell example neither runs nor says
// why, and lists the ones that do not run.
func TestExamplesAccounted(t *testing.T) {
	n, skipped := 0, 0
	for _, doc := range documents(t) {
		bs, err := blocks(doc)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, b := range bs {
			if b.notRun != "" && !b.shell() && !fullConfig(b) {
				t.Errorf("%s: <!-- not run --> on a %s block, which never runs", b, b.lang)
			}
			if !b.shell() {
				continue
			}
			n++
			if b.notRun != "" {
				skipped++
				t.Logf("%s: not run: %s", b, b.notRun)
			}
			if b.lang == "console" {
				if _, err := commands(b); err != nil {
					t.Error(err)
				}
			}
		}
	}
	if n-skipped < 10 {
		t.Errorf("only %d of %d shell examples run: the docs should show commands a reader can try", n-skipped, n)
	}
}

// fullConfig reports whether a block is a whole carpipe config.
func fullConfig(b block) bool {
	return b.lang == "yaml" && slices.Contains(strings.Split(b.text, "\n"), "version: 1")
}

// session is one document's examples: a folder, an environment, a shell
// state carried over from block to block.
type session struct {
	t     *testing.T
	dir   string
	env   []string
	state string // exported variables and folder, written by each block
	n     int
}

func newSession(t *testing.T, bin string) *session {
	work := t.TempDir()
	for _, d := range []string{"config", "testdata"} {
		copyTree(t, filepath.Join(root, d), filepath.Join(work, d), nil)
	}
	copyTree(t, filepath.Join(root, "schemas"), filepath.Join(work, "schemas"), func(name string) bool {
		return strings.HasSuffix(name, ".schema.json")
	})
	home := t.TempDir()
	env := []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home, "TMPDIR=" + os.TempDir(), "TZ=UTC",
	}
	env = append(env, postgresEnv(t)...)
	return &session{t: t, dir: work, env: env, state: filepath.Join(home, ".doc-state")}
}

// postgresEnv names a fresh database with the original tool's variables.
func postgresEnv(t *testing.T) []string {
	dsn := plugintest.PostgresDSN(t)
	v := map[string]string{"port": "5432"}
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		v["host"], v["dbname"] = u.Hostname(), strings.TrimPrefix(u.Path, "/")
		if p := u.Port(); p != "" {
			v["port"] = p
		}
		v["user"] = u.User.Username()
		v["password"], _ = u.User.Password()
		v["sslmode"] = u.Query().Get("sslmode")
	} else {
		for _, kv := range strings.Fields(dsn) { // key=value; a later key wins
			if k, val, ok := strings.Cut(kv, "="); ok {
				v[k] = strings.Trim(val, "'")
			}
		}
	}
	return []string{"POSTGRES_HOST=" + v["host"], "POSTGRES_PORT=" + v["port"], "POSTGRES_USER=" + v["user"],
		"POSTGRES_PASS=" + v["password"], "POSTGRES_DB=" + v["dbname"], "POSTGRES_SSLMODE=" + v["sslmode"]}
}

// prelude restores the state of the previous block, and has `go run
// ./cmd/carpipe` run the binary already built from that package; any
// other go command is refused, since examples must not build or test.
const prelude = `if [ -f "$DOC_STATE" ]; then . "$DOC_STATE"; cd "$DOC_CWD"; fi
trap '{ export -p | grep -v -e " PWD=" -e " OLDPWD=" -e " SHLVL=" -e " _="; echo "export DOC_CWD=\"$PWD\""; } > "$DOC_STATE"' EXIT
go() {
	if [ "$1" = run ] && [ "$2" = ./cmd/carpipe ]; then shift 2; carpipe "$@"; return; fi
	echo "doc examples may only 'go run ./cmd/carpipe'; mark the block <!-- not run: why -->" >&2; return 127
}
set -eu -o pipefail
`

// run runs one piece of shell and returns its stdout, stderr and exit code.
func (s *session) run(b block, script string) (string, string, int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", prelude+script)
	cmd.Dir = s.dir
	cmd.Env = append(slices.Clip(s.env), "DOC_STATE="+s.state, "DOC_CWD="+s.dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		s.t.Fatalf("%s: still running after a minute: an example must end by itself, or be marked <!-- not run: ... -->\n%s", b, script)
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			s.t.Fatalf("%s: %v", b, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// want is the exit code expected of command i of n.
func (b block) want(i, n int) int {
	if k := i - (n - len(b.exit)); k >= 0 {
		return b.exit[k]
	}
	return 0
}

func (s *session) script(b block) {
	if len(b.exit) > 1 {
		s.t.Errorf("%s: a %s block has one exit code", b, b.lang)
	}
	stdout, stderr, code := s.run(b, b.text)
	if want := b.want(0, 1); code != want {
		s.t.Errorf("%s: exit %d, want %d\n%s--- stdout:\n%s--- stderr:\n%s", b, code, want, b.text, stdout, stderr)
	}
}

func (s *session) console(b block) {
	cmds, err := commands(b)
	if err != nil {
		s.t.Error(err)
		return
	}
	if len(b.exit) > len(cmds) {
		s.t.Errorf("%s: %d exit codes for %d commands", b, len(b.exit), len(cmds))
	}
	for i, c := range cmds {
		stdout, stderr, code := s.run(b, c.text)
		if want := b.want(i, len(cmds)); code != want {
			s.t.Errorf("%s: $ %s: exit %d, want %d\n--- stdout:\n%s--- stderr:\n%s", b, c.text, code, want, stdout, stderr)
			continue
		}
		if got, want := normalize(stdout), normalize(c.want); got != want {
			s.t.Errorf("%s: $ %s: the output differs from the docs' (times, durations, rates and runs of spaces aside) at %s\n--- got:\n%s--- stderr:\n%s",
				b, c.text, firstDiff(got, want), stdout, stderr)
		}
	}
}

// checkConfig runs carpipe check on a config from the docs, saved in the
// config folder so that its relative paths mean what they say there.
func (s *session) checkConfig(b block) {
	s.n++
	name := fmt.Sprintf("config/doc-example-%d.yaml", s.n)
	if err := os.WriteFile(filepath.Join(s.dir, name), []byte(b.text), 0o644); err != nil {
		s.t.Fatal(err)
	}
	stdout, stderr, code := s.run(b, "carpipe check -c "+name)
	if code != 0 {
		s.t.Errorf("%s: carpipe check: exit %d\n%s%s", b, code, stdout, stderr)
	}
}

// copyTree copies the regular files under from (those keep accepts) to to.
func copyTree(t *testing.T, from, to string, keep func(name string) bool) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case !d.Type().IsRegular() || keep != nil && !keep(d.Name()):
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
