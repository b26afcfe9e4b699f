package main

import (
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/carpipe/carpipe/plugins"
	"github.com/carpipe/carpipe/plugins/outputs/sqlite"
	"github.com/carpipe/carpipe/plugins/store"
)

// pushgateway is a fake Pushgateway that keeps what it is sent.
type pushgateway struct {
	*httptest.Server
	mu      sync.Mutex
	method  string
	path    string
	raw     string
	metrics map[string]*dto.MetricFamily
}

func newPushgateway(t *testing.T) *pushgateway {
	g := &pushgateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mfs := map[string]*dto.MetricFamily{}
		dec := expfmt.NewDecoder(strings.NewReader(string(body)), expfmt.ResponseFormat(r.Header))
		for {
			mf := &dto.MetricFamily{}
			if err := dec.Decode(mf); err != nil {
				break
			}
			mfs[mf.GetName()] = mf
		}
		g.mu.Lock()
		g.method, g.path, g.raw, g.metrics = r.Method, r.URL.Path, string(body), mfs
		g.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(g.Close)
	return g
}

// value sums a pushed metric's samples whose labels include want.
func (g *pushgateway) value(name string, want map[string]string) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	mf, ok := g.metrics[name]
	if !ok {
		return math.NaN()
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// TestPushgateway: a one-shot run pushes its final metrics, grouped by
// pipeline (and by the pod's index in an Indexed Job), with no secret in
// them.
func TestPushgateway(t *testing.T) {
	const password = "Sup3r-Secret-Pw"
	b := backends[1] // postgres, with a password trust auth ignores
	p := newPipe(t, backend{b.name, func(t *testing.T) (string, *sql.DB) {
		out, db := b.output(t)
		return strings.Replace(out, "postgres@", "postgres:"+password+"@", 1), db
	}}, "../../testdata/sample", "../../schemas", "keep", "keep")
	g := newPushgateway(t)
	t.Setenv("JOB_COMPLETION_INDEX", "3")
	code, out, errs := carpipe(t, "run", "-c", p.config, "--pushgateway", g.URL)
	wantCode(t, code, exitOK, out, errs)
	// The grouping labels may come in any order.
	if g.method != http.MethodPut || !samePush(g.path, "/metrics/job/carpipe", map[string]string{"pipeline": "test", "index": "3"}) {
		t.Fatalf("pushed with %s %s", g.method, g.path)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"carpipe_files_total", map[string]string{"input": "inbox", "outcome": "processed"}, 6},
		{"carpipe_files_total", map[string]string{"outcome": "failed"}, 0},
		{"carpipe_records_total", map[string]string{"outcome": "inserted"}, 60},
		{"carpipe_records_total", map[string]string{"file_type": "vehicles_status", "outcome": "inserted"}, 30},
		{"carpipe_file_duration_seconds", map[string]string{"outcome": "processed"}, 6},
		{"carpipe_runs_total", map[string]string{"status": "ok"}, 1},
		{"carpipe_database_up", nil, 1},
	} {
		if got := g.value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if g.value("carpipe_bytes_total", nil) < 1000 || g.value("carpipe_last_success_timestamp_seconds", nil) < 1e9 {
		t.Errorf("bytes %v, last success %v", g.value("carpipe_bytes_total", nil), g.value("carpipe_last_success_timestamp_seconds", nil))
	}
	if strings.Contains(g.raw, password) || strings.Contains(g.raw, "127.0.0.1") {
		t.Fatal("the push holds the connection's password or address")
	}
	if _, ok := g.metrics["go_goroutines"]; ok {
		t.Error("the push holds the Go runtime's metrics, which mean nothing once the job is gone")
	}

	// A failed run pushes too: no new last success, a failed run counted.
	g2 := newPushgateway(t)
	t.Setenv("JOB_COMPLETION_INDEX", "")
	bad := newPipe(t, backends[0], "../../testdata/run/bad", "../../schemas", "keep", "keep")
	code, out, errs = carpipe(t, "run", "-c", bad.config, "--pushgateway", g2.URL)
	wantCode(t, code, exitPartial, out, errs)
	if g2.path != "/metrics/job/carpipe/pipeline/test" {
		t.Fatalf("pushed to %s", g2.path)
	}
	if got := g2.value("carpipe_files_total", map[string]string{"outcome": "failed"}); got != 4 {
		t.Errorf("%v failed files pushed, want 4", got)
	}
	if got := g2.value("carpipe_runs_total", map[string]string{"status": "partial"}); got != 1 {
		t.Errorf("%v partial runs pushed", got)
	}
}

// TestPushgatewayDown: a push that fails is logged and leaves the exit
// code to the run.
func TestPushgatewayDown(t *testing.T) {
	g := newPushgateway(t)
	url := g.URL
	g.Close()
	p := newPipe(t, backends[0], "../../testdata/sample", "../../schemas", "keep", "keep")
	code, out, errs := carpipe(t, "run", "-c", p.config, "--pushgateway", url)
	wantCode(t, code, exitOK, out, errs)
	wantContains(t, errs, "metrics not pushed")
}

func TestRunFlagErrors(t *testing.T) {
	p := newPipe(t, backends[0], "../../testdata/sample", "../../schemas", "keep", "keep")
	for _, c := range []struct{ args, want string }{
		{"--watch --pushgateway http://pgw:9091", "--pushgateway is for one-shot runs"},
		{"--interval 0s --watch", "--interval must be positive"},
		{"--claim-ttl 10ms", "--claim-ttl must be at least 1s"},
		{"--db-retry-for -1s", "must not be negative"},
		{"--pushgateway ftp://x", "want an http:// or https:// URL"},
		{"--pushgateway http://x:1/a@b", "an @ after the host"},
	} {
		code, out, errs := carpipe(t, append([]string{"run", "-c", p.config}, strings.Fields(c.args)...)...)
		wantCode(t, code, exitUsage, out, errs)
		wantContains(t, errs, c.want)
	}
	// A password in the Pushgateway's URL is never shown.
	code, out, errs := carpipe(t, "run", "-c", p.config, "--pushgateway", "http://u:Pgw-Secret-9@127.0.0.1:1/")
	wantCode(t, code, exitOK, out, errs)
	if strings.Contains(out+errs, "Pgw-Secret-9") {
		t.Fatalf("password shown:\n%s", errs)
	}
}

// samePush reports whether a push path is prefix followed by exactly the
// grouping labels, in any order.
func samePush(path, prefix string, labels map[string]string) bool {
	rest, ok := strings.CutPrefix(path, prefix+"/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 2*len(labels) {
		return false
	}
	for i := 0; i < len(parts); i += 2 {
		if labels[parts[i]] != parts[i+1] {
			return false
		}
	}
	return true
}

// authGateway is a Pushgateway that keeps the basic auth it was sent and
// answers code with a body echoing the request line and headers, as a
// misconfigured gateway or proxy might.
type authGateway struct {
	*httptest.Server
	mu       sync.Mutex
	user, pw string
	auth     bool
}

func newAuthGateway(t *testing.T, code int) *authGateway {
	g := &authGateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		g.mu.Lock()
		g.user, g.pw, g.auth = r.BasicAuth()
		g.mu.Unlock()
		w.WriteHeader(code)
		fmt.Fprintf(w, "%s %s %v", r.Method, r.URL, r.Header)
	}))
	t.Cleanup(g.Close)
	return g
}

// withUser is the gateway's URL with credentials.
func (g *authGateway) withUser(user, pw string) *url.URL {
	u, _ := url.Parse(g.URL)
	u.User = url.UserPassword(user, pw)
	return u
}

const pushUser, pushPassword = "pusher", "Zr8/Qx#Wm5 k"

// noCredentials fails when s holds the password (or 3 characters of it),
// its percent-encoded form or the basic auth token.
func noCredentials(t *testing.T, what, s string) {
	t.Helper()
	escaped := url.UserPassword(pushUser, pushPassword).String()
	token := base64.StdEncoding.EncodeToString([]byte(pushUser + ":" + pushPassword))
	for _, sec := range []string{escaped, token, strings.TrimPrefix(escaped, pushUser+":")} {
		if strings.Contains(s, sec) {
			t.Errorf("%s shows %q:\n%s", what, sec, s)
		}
	}
	r := []rune(pushPassword)
	for i := 0; i+3 <= len(r); i++ {
		if strings.Contains(s, string(r[i:i+3])) {
			t.Errorf("%s shows %q of the password:\n%s", what, string(r[i:i+3]), s)
		}
	}
}

// TestPushCredentials: the URL's user and password reach the gateway as
// basic auth, and no failure shows them, whatever the gateway answers.
func TestPushCredentials(t *testing.T) {
	ok := newAuthGateway(t, http.StatusOK)
	refuses := newAuthGateway(t, http.StatusInternalServerError)
	down := newAuthGateway(t, http.StatusOK)
	down.Close()
	for _, c := range []struct {
		name string
		g    *authGateway
		want []string // in stderr
	}{
		{"accepted", ok, nil},
		{"500", refuses, []string{"metrics not pushed", "the gateway answered 500 Internal Server Error", "pusher:xxxxx@127.0.0.1"}},
		{"refused", down, []string{"metrics not pushed", "connection refused", "pusher:xxxxx@127.0.0.1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPipe(t, backends[0], "../../testdata/sample", "../../schemas", "keep", "keep")
			code, out, errs := carpipe(t, "run", "-c", p.config, "--pushgateway", c.g.withUser(pushUser, pushPassword).String())
			wantCode(t, code, exitOK, out, errs)
			wantContains(t, errs, c.want...)
			if c.want == nil && strings.Contains(errs, "metrics not pushed") {
				t.Errorf("the push failed:\n%s", errs)
			}
			noCredentials(t, "the run's output", out+errs)
			if c.g != down {
				c.g.mu.Lock()
				defer c.g.mu.Unlock()
				if !c.g.auth || c.g.user != pushUser || c.g.pw != pushPassword {
					t.Errorf("the gateway got basic auth %v %q %q; want %q and the password", c.g.auth, c.g.user, c.g.pw, pushUser)
				}
			}
		})
	}
}

// TestPushErrorWords: push's own error, before any masking of the output,
// holds none of the credentials the gateway echoed.
func TestPushErrorWords(t *testing.T) {
	g := newAuthGateway(t, http.StatusBadGateway)
	err := newMetrics().push(t.Context(), g.withUser(pushUser, pushPassword), "p", "")
	if err == nil {
		t.Fatal("a push answered 502 succeeded")
	}
	noCredentials(t, "the push error", err.Error())
	if want := "pushing to http://pusher:xxxxx@" + strings.TrimPrefix(g.URL, "http://") + ": the gateway answered 502 Bad Gateway"; err.Error() != want {
		t.Errorf("push error %q, want %q", err, want)
	}
}

// TestPushgatewayURLErrors: a --pushgateway that is refused is not shown,
// as the password may be anywhere in it.
func TestPushgatewayURLErrors(t *testing.T) {
	p := newPipe(t, backends[0], "../../testdata/sample", "../../schemas", "keep", "keep")
	for _, u := range []string{
		"http://pusher:" + pushPassword + "@127.0.0.1:9091/",
		"https://pusher:Zr8/Qx#Wm5 k@push.example/",
		"https://pusher:1234/Zr8Qx#Wm5 k@push.example/",
		"pusher:Zr8/Qx#Wm5 k@push.example",
		"ftp://pusher:Zr8%2FQx%23Wm5%20k@push.example/",
		"http://pusher:Zr8%zzQx#Wm5 k@push.example/",
		"http://pusher:Zr8%2FQx%23Wm5%20k@/",
	} {
		code, out, errs := carpipe(t, "run", "-c", p.config, "--pushgateway", u)
		wantCode(t, code, exitUsage, out, errs)
		wantContains(t, errs, "--pushgateway (not shown: it may hold a password)")
		noCredentials(t, "the error for "+u, out+errs)
	}
}

// TestMetricsEveryOutcome: one run whose files end in every outcome, and
// carpipe_files_total counts each as the run's summary does; the lag of
// loaded data is observed per file type; carpipe_build_info is there.
func TestMetricsEveryOutcome(t *testing.T) {
	dir := t.TempDir()
	// A second type whose names overlap vehicles_status: its files are
	// ambiguous.
	schemasDir := filepath.Join(dir, "schemas")
	copyDir(t, "../../schemas", schemasDir)
	os.WriteFile(filepath.Join(schemasDir, "status_copy.schema.json"), []byte(`{"type":"object","x-carpipe":{
		"match":"^vehicles_status_(?P<timestamp>\\d{10})\\.json$","records":"/vehicle_status","key":["vehicle_id"]},
		"properties":{"vehicle_id":{"type":"string"}}}`), 0o644)
	sample := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("../../testdata/sample", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := sample("objects_detection_1600000060.json")
	old := time.Now().Add(-2 * time.Hour)
	files := map[string][]byte{
		"a/objects_detection_1600000060.json": good,                                      // processed
		"a/objects_detection_1600000061.json": []byte(`{"objects_detection_events":[`),   // failed
		"a/objects_detection_1600000062.json": good,                                      // held by another process
		"a/objects_detection_1600000063.json": good,                                      // skipped: too recent
		"a/vehicles_status_1600000000.json":   sample("vehicles_status_1600000000.json"), // ambiguous
		"a/notes.txt":                         []byte("hello"),                           // unmatched
		"b/objects_detection_1600000064.json": good,                                      // left: its move fails
		"b/done":                              []byte("a file where the move wants a folder"),
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if name != "a/objects_detection_1600000063.json" {
			os.Chtimes(p, old, old)
		}
	}
	dbPath := filepath.Join(dir, "carpipe.db")
	cfg := filepath.Join(dir, "carpipe.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
name: outcomes
schemas: schemas
inputs:
  - {name: a, type: dir, path: a, on_success: keep, on_failure: keep, min_age: 1h}
  - {name: b, type: dir, path: b, on_success: "move:done", on_failure: keep}
outputs:
  - {name: db, type: sqlite, path: %q}
`, dbPath)), 0o644)
	code, out, errs := carpipe(t, "migrate", "-c", cfg)
	wantCode(t, code, exitOK, out, errs)
	db, err := sql.Open("sqlite", sqlite.DSN(dbPath))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	holders, err := filepath.EvalSymlinks(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	// Another live process: its holder's lock is held for the whole run.
	other := &store.Store{DB: db, Dialect: dialect.SQLite, Holders: holders + "-holders"}
	other.Open()
	release, err := other.Hold(t.Context(), "another-host:1")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got, err := other.Claim(t.Context(), "another-host:1", "a", []string{"objects_detection_1600000062.json"}, time.Hour); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}

	g := newPushgateway(t)
	start := time.Now()
	code, out, errs = carpipe(t, "run", "-c", cfg, "--pushgateway", g.URL)
	wantCode(t, code, exitPartial, out, errs)
	// The summary's files line: "  files:   1 processed, 1 failed, ...".
	m := regexp.MustCompile(`files: +(.*)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no files line in the summary:\n%s", out)
	}
	counts := map[string]float64{}
	for _, part := range strings.Split(m[1], ", ") {
		var n float64
		var outcome string
		fmt.Sscanf(part, "%g %s", &n, &outcome)
		counts[outcome] = n
	}
	for _, o := range plugins.Outcomes {
		if counts[o] < 1 {
			t.Errorf("no file ended %s: the run does not cover every outcome (%s)", o, m[1])
		}
		if got := g.value("carpipe_files_total", map[string]string{"outcome": o}); got != counts[o] {
			t.Errorf("carpipe_files_total{outcome=%q} = %v, the summary says %v", o, got, counts[o])
		}
	}

	// Lag: files named 1600000060 and 1600000064, loaded now, for the
	// processed file and the left one.
	lag := g.metrics["carpipe_file_lag_seconds"]
	if lag == nil || len(lag.GetMetric()) != 1 {
		t.Fatalf("carpipe_file_lag_seconds: %v", lag)
	}
	h := lag.GetMetric()[0]
	if l := h.GetLabel(); len(l) != 1 || l[0].GetName() != "file_type" || l[0].GetValue() != "objects_detection" {
		t.Errorf("lag labels %v", l)
	}
	want := start.Sub(time.Unix(1600000060, 0)).Seconds() + start.Sub(time.Unix(1600000064, 0)).Seconds()
	if hs := h.GetHistogram(); hs.GetSampleCount() != 2 || math.Abs(hs.GetSampleSum()-want) > 60 {
		t.Errorf("lag: %d samples summing %v s, want 2 summing %v s", hs.GetSampleCount(), hs.GetSampleSum(), want)
	}
	for _, b := range h.GetHistogram().GetBucket() {
		if b.GetUpperBound() != math.Round(b.GetUpperBound()) {
			t.Errorf("lag bucket %v is not a whole number of seconds", b.GetUpperBound())
		}
	}

	info := g.metrics["carpipe_build_info"]
	if info == nil || len(info.GetMetric()) != 1 || info.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("carpipe_build_info: %v", info)
	}
	labels := map[string]string{}
	for _, l := range info.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] == "" || labels["goversion"] != runtime.Version() {
		t.Errorf("carpipe_build_info labels %v", labels)
	}
}

// TestBucketsRound: bucket bounds read as round numbers (le="0.025",
// le="300"), never as 0.015 or 10.935: under a minute 1, 2, 2.5, 3 or 5
// times a power of ten; above, whole minutes, hours past an hour, days past
// a day.
func TestBucketsRound(t *testing.T) {
	round := func(b float64) bool {
		switch {
		case b >= 86400:
			return math.Mod(b, 86400) == 0
		case b >= 3600:
			return math.Mod(b, 3600) == 0
		case b >= 60:
			return math.Mod(b, 60) == 0
		}
		m := b / math.Pow(10, math.Floor(math.Log10(b)))
		for _, w := range []float64{1, 2, 2.5, 3, 5} {
			if math.Abs(m-w) < 1e-9 {
				return true
			}
		}
		return false
	}
	if round(0.015) || round(10.935) || round(90) {
		t.Fatal("the rule lets odd bounds through")
	}
	for _, b := range append(append([]float64{}, durationBuckets...), lagBuckets...) {
		if !round(b) {
			t.Errorf("bucket bound %v is not a round number", b)
		}
	}
}
