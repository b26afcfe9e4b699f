package main

import (
	"database/sql"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
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
