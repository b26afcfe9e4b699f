package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/carpipe/carpipe/plugins/inputs/ftp" // until plugins/all imports it
	"github.com/carpipe/carpipe/plugins/inputs/ftp/ftptest"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// TestFTPEndToEnd loads the sample files from an in-process FTPS server
// (explicit TLS, its certificate trusted through ca_file) into Postgres.
func TestFTPEndToEnd(t *testing.T) {
	s := ftptest.Start(t, ftptest.Options{TLS: "explicit"})
	samples, err := filepath.Glob("../../testdata/sample/*.json")
	if err != nil || len(samples) != 6 {
		t.Fatalf("samples: %v, %v", samples, err)
	}
	var names []string
	for _, p := range samples {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(p))
		s.Put(t, "/inbox/"+filepath.Base(p), data, time.Now().Add(-time.Hour))
	}

	dsn := plugintest.PostgresDSN(t)
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := pipe{db: db}

	t.Setenv("CARPIPE_TEST_FTP_PASSWORD", ftptest.Password)
	schemas, _ := filepath.Abs("../../schemas")
	cfg := fmt.Sprintf(`version: 1
name: ftp-test
schemas: %q
inputs:
  - name: uploads
    type: ftp
    host: 127.0.0.1
    port: %d
    user: %s
    password: ${CARPIPE_TEST_FTP_PASSWORD}
    path: /inbox
    tls: explicit
    ca_file: %q
    on_success: move:processed
    on_failure: move:failed
outputs:
  - {name: db, type: postgres, dsn: %q}
`, schemas, s.Port, ftptest.User, s.CAFile, dsn)
	path := filepath.Join(t.TempDir(), "carpipe.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errs := carpipe(t, "run", "-c", path)
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "6 processed, 0 failed, 0 skipped, 0 unmatched", "60 inserted, 0 duplicate, 0 rejected")
	if n := stored(t, p.db, ""); n != 60 {
		t.Fatalf("%d records stored; want 60", n)
	}
	if n := p.count(t, "SELECT count(*) FROM files WHERE status = 'processed' AND input = 'uploads'"); n != 6 {
		t.Fatalf("%d processed files in the ledger; want 6", n)
	}
	if got := s.Names(t, "/inbox"); !slices.Equal(got, []string{"processed"}) {
		t.Errorf("/inbox holds %v after the run; want only processed/", got)
	}
	if got := s.Names(t, "/inbox/processed"); !slices.Equal(got, names) {
		t.Errorf("/inbox/processed holds %v; want %v", got, names)
	}
	for _, n := range names {
		want, _ := os.ReadFile(filepath.Join("../../testdata/sample", n))
		if got, ok := s.Get(t, "/inbox/processed/"+n); !ok || string(got) != string(want) {
			t.Errorf("processed/%s does not hold the sample's bytes", n)
		}
	}

	// Nothing left to load.
	code, out, errs = carpipe(t, "run", "-c", path)
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "0 processed, 0 failed, 0 skipped", "0 inserted, 0 duplicate")
	if n := stored(t, p.db, ""); n != 60 {
		t.Fatalf("the second run changed the records: %d", n)
	}
	if n := p.count(t, "SELECT count(*) FROM runs WHERE status = 'ok'"); n != 2 {
		t.Fatalf("%d ok runs; want 2", n)
	}
	for _, o := range []string{out, errs} {
		if strings.Contains(o, ftptest.Password) {
			t.Errorf("the output shows the FTP password:\n%s", o)
		}
	}
}
