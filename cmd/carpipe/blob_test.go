//go:build !nocloud

package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	_ "github.com/carpipe/carpipe/plugins/inputs/blob"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// TestBlobEndToEnd loads the sample files from an S3 bucket (gofakes3 over
// HTTP on 127.0.0.1, reached through the AWS SDK) into Postgres, then runs
// again over the same files put back: the ledger keeps them out.
func TestBlobEndToEnd(t *testing.T) {
	const secret = "e2e-secret-key-Vq71XwPz"
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "carpipe-e2e", "AWS_SECRET_ACCESS_KEY": secret,
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}

	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	if err := backend.CreateBucket("cars"); err != nil {
		t.Fatal(err)
	}
	sample, err := filepath.Glob("../../testdata/sample/*.json")
	if err != nil || len(sample) != 6 {
		t.Fatalf("sample files: %v, %v", sample, err)
	}
	upload := func() {
		for _, f := range sample {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := backend.PutObject("cars", "incoming/"+filepath.Base(f), map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys := func() []string {
		list, err := backend.ListBucket("cars", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range list.Contents {
			out = append(out, c.Key)
		}
		slices.Sort(out)
		return out
	}
	upload()

	dsn := plugintest.PostgresDSN(t)
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
	schemas, _ := filepath.Abs("../../schemas")
	cfg := filepath.Join(t.TempDir(), "carpipe.yaml")
	err = os.WriteFile(cfg, fmt.Appendf(nil, `version: 1
name: blob-e2e
schemas: %q
inputs:
  - name: bucket
    type: blob
    url: "s3://cars?region=us-east-1&endpoint=%s&use_path_style=true"
    prefix: incoming/
    on_success: move:processed
    on_failure: move:failed
outputs:
  - {name: db, type: postgres, dsn: %q}
`, schemas, srv.URL, dsn), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	code, out, errs := carpipe(t, "run", "-c", cfg)
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, out, "6 processed, 0 failed, 0 skipped, 0 unmatched", "60 inserted, 0 duplicate, 0 rejected")
	if n := stored(t, db, ""); n != 60 {
		t.Fatalf("%d records stored; want 60", n)
	}
	if n := count("SELECT count(*) FROM files WHERE status = 'processed' AND input = 'bucket' AND records_inserted = 10"); n != 6 {
		t.Fatalf("%d processed ledger rows; want 6", n)
	}
	var want []string
	for _, f := range sample {
		want = append(want, "incoming/processed/"+filepath.Base(f))
	}
	slices.Sort(want)
	if got := keys(); !slices.Equal(got, want) {
		t.Fatalf("objects after the first run:\n%q\nwant\n%q", got, want)
	}
	for _, f := range sample {
		obj, err := backend.GetObject("cars", "incoming/processed/"+filepath.Base(f), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(obj.Contents)
		obj.Contents.Close()
		if orig, _ := os.ReadFile(f); !bytes.Equal(got, orig) {
			t.Errorf("%s changed when it was moved", filepath.Base(f))
		}
	}

	// The same files uploaded again: the ledger knows them, nothing loads,
	// and the moves keep both copies.
	upload()
	code, out2, errs2 := carpipe(t, "run", "-c", cfg)
	wantCode(t, code, exitOK, out2, errs2)
	wantContains(t, out2, "0 processed, 0 failed, 6 skipped", "0 inserted, 0 duplicate, 0 rejected")
	if n := stored(t, db, ""); n != 60 {
		t.Fatalf("the second run changed the records: %d", n)
	}
	got := keys()
	if len(got) != 12 || !strings.Contains(strings.Join(got, " "), "incoming/processed/vehicles_status_1600000000-1.json") {
		t.Fatalf("objects after the second run: %q; want both copies in incoming/processed/", got)
	}
	for _, k := range got {
		if !strings.HasPrefix(k, "incoming/processed/") {
			t.Errorf("%s was not moved", k)
		}
	}
	for _, s := range []string{out, errs, out2, errs2} {
		if strings.Contains(s, secret) {
			t.Errorf("the secret key was printed:\n%s", s)
		}
	}
}
