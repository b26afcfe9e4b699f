package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/carpipe/carpipe/plugins/inputs/sftp" // registers "sftp" until plugins/all imports it
	"github.com/carpipe/carpipe/plugins/inputs/sftp/sftptest"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// TestSFTPEndToEnd runs the CLI on an SFTP input served in-process over
// SSH, logging in with a key and checking the host key against known_hosts.
func TestSFTPEndToEnd(t *testing.T) {
	dir := t.TempDir()
	remote := filepath.Join(dir, "remote")
	copyDir(t, "../../testdata/sample", remote)
	srv := sftptest.Start(t, remote)
	pub, key := sftptest.NewKey(t, "")
	srv.Authorize(pub)
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("id_ed25519", string(key))
	write("known_hosts", srv.KnownHostsLine())

	dsn := plugintest.PostgresDSN(t)
	schemas, _ := filepath.Abs("../../schemas")
	// Key and known_hosts are relative to the config's folder.
	write("carpipe.yaml", fmt.Sprintf(`version: 1
name: sftp-e2e
schemas: %q
inputs:
  - name: remote
    type: sftp
    host: %s
    port: %d
    user: %s
    private_key: id_ed25519
    known_hosts: known_hosts
    on_success: move:processed
    on_failure: move:failed
outputs:
  - {name: db, type: postgres, dsn: %q}
`, schemas, srv.Host, srv.Port, srv.User, dsn))
	cfg := filepath.Join(dir, "carpipe.yaml")

	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(query string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	remoteFiles := func() []string {
		t.Helper()
		var out []string
		err := filepath.WalkDir(remote, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(remote, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	samples, err := os.ReadDir("../../testdata/sample")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range samples {
		want = append(want, "processed/"+e.Name())
	}

	code, out, errs := carpipe(t, "run", "-c", cfg)
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "6 processed, 0 failed, 0 skipped, 0 unmatched", "60 inserted, 0 duplicate, 0 rejected")
	if n := stored(t, db, ""); n != 60 {
		t.Fatalf("%d records stored; want 60", n)
	}
	if n := count("SELECT count(*) FROM files WHERE status = 'processed' AND input = 'remote' AND records_inserted = 10"); n != 6 {
		t.Fatalf("%d processed files in the ledger; want 6", n)
	}
	if got := remoteFiles(); !slices.Equal(got, want) {
		t.Fatalf("files on the server: %v; want %v", got, want)
	}

	// Nothing left to load.
	code, out, errs = carpipe(t, "run", "-c", cfg)
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "0 processed, 0 failed, 0 skipped, 0 unmatched", "0 inserted, 0 duplicate, 0 rejected")
	if n := stored(t, db, ""); n != 60 {
		t.Fatalf("the second run changed the records: %d", n)
	}
	if got := remoteFiles(); !slices.Equal(got, want) {
		t.Fatalf("files on the server after the second run: %v; want %v", got, want)
	}
	if strings.Contains(errs, "WARN") {
		t.Errorf("warnings logged:\n%s", errs)
	}
}
