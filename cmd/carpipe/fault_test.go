package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The database refuses one file's value (a trigger raising an error, as a
// constraint added by a DBA would): that file fails with the database's
// reason, the others load, and the run goes on to exit 3. Both load paths
// meet it: small files loaded in a group, and a large file streamed.
func TestDatabaseRefusesOneFile(t *testing.T) {
	p := newPipe(t, backends[1], t.TempDir(), "../../schemas", "move:processed", "move:failed")
	code, out, errs := carpipe(t, "migrate", "-c", p.config)
	wantCode(t, code, exitOK, out, errs)
	for _, q := range []string{
		`CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN
			IF NEW.status = 'poison' THEN RAISE EXCEPTION 'refused by a test trigger'; END IF;
			RETURN NEW; END $$ LANGUAGE plpgsql`,
		`CREATE TRIGGER refuse BEFORE INSERT ON vehicles_status FOR EACH ROW EXECUTE FUNCTION refuse()`,
		// The ledger too refuses one file's row: its failure cannot even be
		// recorded, and it must stay where it is.
		`CREATE FUNCTION refuse_file() RETURNS trigger AS $$ BEGIN
			IF NEW.path LIKE '%1600000009%' THEN RAISE EXCEPTION 'ledger refuses this path'; END IF;
			RETURN NEW; END $$ LANGUAGE plpgsql`,
		`CREATE TRIGGER refuse_file BEFORE INSERT OR UPDATE ON files FOR EACH ROW EXECUTE FUNCTION refuse_file()`,
	} {
		if _, err := p.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(i int, status string) string {
		return fmt.Sprintf(`{"vehicle_id":"v%d","report_time":"2020-01-01T00:00:00Z","status":%q}`, i, status)
	}
	write := func(name string, recs ...string) {
		body := `{"vehicle_status":[` + strings.Join(recs, ",") + `]}`
		if err := os.WriteFile(filepath.Join(p.inbox, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("vehicles_status_1600000001.json", rec(1, "ok"))
	write("vehicles_status_1600000002.json", rec(2, "ok"), rec(3, "poison"))
	write("vehicles_status_1600000003.json", rec(4, "ok"))
	var big []string
	for i := range 5000 { // over the small-file size: the streaming path
		big = append(big, rec(100+i, "ok"))
	}
	write("vehicles_status_1600000004.json", append(big, rec(99999, "poison"))...)
	write("vehicles_status_1600000005.json", big[:10]...)
	write("vehicles_status_1600000009.json", rec(7, "ok"))

	code, out, errs = carpipe(t, "run", "-c", p.config, "--workers", "1")
	wantCode(t, code, exitPartial, out, errs)
	if !strings.Contains(out, "3 processed, 3 failed, 0 skipped") {
		t.Errorf("summary:\n%s\n%s", out, errs)
	}
	if n := stored(t, p.db, ""); n != 2+10 {
		t.Errorf("%d records stored, want 12", n)
	}
	for _, f := range []string{"vehicles_status_1600000002.json", "vehicles_status_1600000004.json"} {
		var reason string
		if err := p.db.QueryRow("SELECT error FROM files WHERE path = $1 AND status = 'failed'", f).Scan(&reason); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !strings.Contains(reason, "refused by a test trigger") {
			t.Errorf("%s: reason %q", f, reason)
		}
	}
	got := strings.Join(p.ls(t), " ")
	for _, want := range []string{"processed/vehicles_status_1600000001.json", "failed/vehicles_status_1600000002.json",
		"failed/vehicles_status_1600000004.json", "processed/vehicles_status_1600000005.json",
		" vehicles_status_1600000009.json"} {
		if !strings.Contains(" "+got, want) {
			t.Errorf("inbox lacks %s: %s", want, got)
		}
	}
	if !strings.Contains(errs, "ledger refuses this path") {
		t.Errorf("the unrecorded failure is not logged:\n%s", errs)
	}
}
