package main

// The CLI's behaviour as testscript scripts: testdata/script/*.txtar at the
// repository's root. Each script runs in its own folder with its own
// PostgreSQL database; scripts under testdata/script/backends run once on
// SQLite and once on PostgreSQL.
//
// A script sees:
//
//	$SCHEMAS   the repository's schemas/
//	$TESTDATA  the repository's testdata/
//	$REPO      the repository's root
//	$PGDSN     its own PostgreSQL database (carpipe expands ${PGDSN} in a config)
//	$PGPORT_   that server's port, $PGDB_ the database's name
//	$DB        sqlite or postgres (backends/ scripts only)
//	$OUTPUT    a database output entry on that backend, for envsubst
//
// and these commands beside the standard ones:
//
//	sql QUERY...      runs each query on the script's database ($DB's, or
//	                  PostgreSQL's) and prints the rows, columns split by |
//	sqlite FILE QUERY...  the same on a SQLite file
//	envsubst FILE...  replaces $NAME and ${NAME} of the script's variables in
//	                  the files; other references are left to carpipe
//	exitcode N        the last carpipe exited with N (0 ok, 1 fatal, 2 usage,
//	                  3 partial)
//	jsonlines stdout|stderr  every line of the last command's output is a
//	                  JSON object

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// scriptMain is TestMain's run: testscript puts carpipe on the scripts'
// PATH (a copy of this test binary, which TestMain turns into carpipe).
func scriptMain(m *testing.M, after func()) {
	testscript.Main(runThen{m, after}, map[string]func(){
		"carpipe": func() { os.Exit(runCarpipe()) },
	})
}

// exitFileEnv names the file where carpipe, started by a script, leaves
// its exit code for the exitcode command: exec only tells zero from not.
const exitFileEnv = "CARPIPE_TEST_EXIT_FILE"

// runCarpipe is main, leaving the exit code where a script reads it.
func runCarpipe() int {
	code := Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if f := os.Getenv(exitFileEnv); f != "" {
		os.WriteFile(f, []byte(strconv.Itoa(code)), 0o644)
	}
	return code
}

type runThen struct {
	m     *testing.M
	after func()
}

func (r runThen) Run() int {
	code := r.m.Run()
	r.after()
	return code
}

func TestScripts(t *testing.T) {
	t.Run("cli", func(t *testing.T) {
		testscript.Run(t, scriptParams("../../testdata/script", ""))
	})
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			testscript.Run(t, scriptParams("../../testdata/script/backends", db))
		})
	}
}

func scriptParams(dir, db string) testscript.Params {
	repo, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	return testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       *plugintest.Update,
		Setup: func(e *testscript.Env) error {
			t, ok := e.T().(testing.TB)
			if !ok {
				return fmt.Errorf("testscript gave a %T, not a testing.TB", e.T())
			}
			dsn := plugintest.PostgresDSN(t) // fails the script when no server answers
			u, err := url.Parse(dsn)
			if err != nil {
				return fmt.Errorf("the test DSN is not a URL: %v", err)
			}
			e.Setenv("PGDSN", dsn)
			e.Setenv("PGPORT_", u.Port())
			e.Setenv("PGDB_", strings.TrimPrefix(u.Path, "/"))
			e.Setenv("REPO", repo)
			e.Setenv("SCHEMAS", filepath.Join(repo, "schemas"))
			e.Setenv("TESTDATA", filepath.Join(repo, "testdata"))
			switch db {
			case "sqlite":
				e.Setenv("OUTPUT", fmt.Sprintf("{name: db, type: sqlite, path: %q}", filepath.Join(e.WorkDir, "carpipe.db")))
			case "postgres":
				e.Setenv("OUTPUT", `{name: db, type: postgres, dsn: "${PGDSN}"}`)
			}
			e.Setenv("DB", db)
			e.Setenv(exitFileEnv, filepath.Join(e.WorkDir, ".carpipe-exit"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sql":       cmdSQL,
			"sqlite":    cmdSQLite,
			"envsubst":  cmdEnvsubst,
			"jsonlines": cmdJSONLines,
			"exitcode":  cmdExitCode,
		},
	}
}

func cmdSQL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: sql QUERY...")
	}
	if ts.Getenv("DB") == "sqlite" {
		query(ts, neg, "sqlite", sqlite.DSN(filepath.Join(ts.Getenv("WORK"), "carpipe.db")), args)
		return
	}
	query(ts, neg, "postgres", ts.Getenv("PGDSN"), args)
}

func cmdSQLite(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: sqlite FILE QUERY...")
	}
	query(ts, neg, "sqlite", sqlite.DSN(ts.MkAbs(args[0])), args[1:])
}

// query runs each query and prints its rows; under ! a query must fail.
func query(ts *testscript.TestScript, neg bool, driver, dsn string, queries []string) {
	db, err := sql.Open(driver, dsn)
	ts.Check(err)
	defer db.Close()
	for _, q := range queries {
		err := printRows(ts, db, q)
		if neg {
			if err == nil {
				ts.Fatalf("%s: succeeded", q)
			}
			fmt.Fprintln(ts.Stderr(), err)
			continue
		}
		if err != nil {
			ts.Fatalf("%s: %v", q, err)
		}
	}
}

func printRows(ts *testscript.TestScript, db *sql.DB, q string) error {
	rows, err := db.Query(q)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		fields := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				fields[i] = "NULL"
			case []byte:
				fields[i] = string(v)
			case time.Time:
				fields[i] = v.UTC().Format(time.RFC3339Nano)
			default:
				fields[i] = fmt.Sprint(v)
			}
		}
		fmt.Fprintln(ts.Stdout(), strings.Join(fields, "|"))
	}
	return rows.Err()
}

func cmdEnvsubst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: envsubst FILE...")
	}
	for _, name := range args {
		data, err := os.ReadFile(ts.MkAbs(name))
		ts.Check(err)
		out := os.Expand(string(data), func(k string) string {
			if v := ts.Getenv(k); v != "" {
				return v
			}
			return "${" + k + "}"
		})
		ts.Check(os.WriteFile(ts.MkAbs(name), []byte(out), 0o644))
	}
}

func cmdJSONLines(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || args[0] != "stdout" && args[0] != "stderr" {
		ts.Fatalf("usage: jsonlines stdout|stderr")
	}
	text := ts.ReadFile(args[0])
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	bad := ""
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			bad = sc.Text()
			break
		}
	}
	switch {
	case neg && bad == "":
		ts.Fatalf("every line of %s is a JSON object", args[0])
	case !neg && bad != "":
		ts.Fatalf("%s: not a JSON object: %q", args[0], bad)
	case !neg && text == "":
		ts.Fatalf("%s is empty", args[0])
	}
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: exitcode N")
	}
	f := ts.Getenv(exitFileEnv)
	data, err := os.ReadFile(f)
	if err != nil {
		ts.Fatalf("no carpipe exited since the last exitcode: %v", err)
	}
	os.Remove(f) // a later exitcode needs a later carpipe
	if got := string(data); got != args[0] {
		ts.Fatalf("carpipe exited %s, want %s", got, args[0])
	}
}
