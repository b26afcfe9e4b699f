package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/carpipe/carpipe/engine"
	"github.com/carpipe/carpipe/plugins"
)

// metrics turns engine events and run results into Prometheus metrics.
// Labels are config names (inputs), file types and fixed words: never a
// path, a host or anything from a connection string.
type metrics struct {
	reg      *prometheus.Registry // carpipe_* only: what a push sends
	files    *prometheus.CounterVec
	skipped  *prometheus.CounterVec
	records  *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	lag      *prometheus.HistogramVec
	runs     *prometheus.CounterVec
	runTime  prometheus.Gauge
	lastOK   prometheus.Gauge
	dbUp     prometheus.Gauge

	mu      sync.Mutex
	healthy bool
	why     string // why not, for /healthz
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "carpipe_files_total",
			Help: "Files listed, by input, file type and outcome: processed, failed, ambiguous, left, unmatched, held, skipped."},
			[]string{"input", "file_type", "outcome"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "carpipe_files_skipped_total",
			Help: "Skipped files by reason: loaded (already in the ledger), vanished, changed (while read), recent (min_age)."},
			[]string{"input", "reason"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "carpipe_records_total",
			Help: "Records of loaded files, by input, file type and outcome (inserted, duplicate, rejected)."},
			[]string{"input", "file_type", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "carpipe_bytes_total",
			Help: "Bytes of the files loaded or failed, by input and file type."},
			[]string{"input", "file_type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "carpipe_file_duration_seconds",
			Help:    "Time to deal with one file, from claim to action, by file type and outcome.",
			Buckets: durationBuckets},
			[]string{"file_type", "outcome"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "carpipe_file_lag_seconds",
			Help:    "How late data arrives: load time minus the file's time (from its name, else its modification time), by file type.",
			Buckets: lagBuckets},
			[]string{"file_type"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "carpipe_runs_total",
			Help: "Runs by status: ok, partial, failed; idle is a watch loop that found nothing new."},
			[]string{"status"}),
		runTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "carpipe_last_run_duration_seconds",
			Help: "How long the latest run or watch loop took."}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "carpipe_last_success_timestamp_seconds",
			Help: "Unix time the latest run or watch loop ended without a fatal error."}),
		dbUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "carpipe_database_up",
			Help: "1 when the database answered last time it was used, else 0."}),
		why: "no loop has reached the database yet",
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "carpipe_build_info",
		Help:        "Always 1: the version of carpipe and of Go it was built with.",
		ConstLabels: prometheus.Labels{"version": appVersion(), "goversion": runtime.Version()}})
	info.Set(1)
	m.reg.MustRegister(m.files, m.skipped, m.records, m.bytes, m.duration, m.lag, m.runs, m.runTime, m.lastOK, m.dbUp, info)
	return m
}

// Bucket bounds are round numbers, so that a dashboard's le labels read
// as durations: 10ms to 5 min for a file, 1 s to 30 days for lag.
var (
	durationBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	lagBuckets      = []float64{
		1, 10, 30, // seconds
		60, 5 * 60, 15 * 60, 30 * 60, // minutes
		3600, 2 * 3600, 6 * 3600, 12 * 3600, // hours
		86400, 2 * 86400, 7 * 86400, 30 * 86400, // days
	}
)

// appVersion is the version set at build time, else the module's, else
// "devel".
func appVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

var skipReasons = map[string]string{
	"already loaded":       "loaded",
	"vanished":             "vanished",
	"changed while read":   "changed",
	"too recent (min_age)": "recent",
}

// event is the engine's Events hook: counters only, it never blocks.
func (m *metrics) event(ev engine.Event) {
	switch ev.Kind {
	case "file":
		m.files.WithLabelValues(ev.Input, ev.FileType, ev.Status).Inc()
		m.duration.WithLabelValues(ev.FileType, ev.Status).Observe(ev.Duration.Seconds())
		// Lag is for data that was loaded; a clock ahead of ours is no lag.
		if ev.FileTime != nil && (ev.Status == plugins.OutcomeProcessed || ev.Status == plugins.OutcomeLeft) {
			m.lag.WithLabelValues(ev.FileType).Observe(max(time.Since(*ev.FileTime).Seconds(), 0))
		}
		switch ev.Status {
		case plugins.OutcomeSkipped:
			reason, ok := skipReasons[ev.Reason]
			if !ok {
				reason = "other"
			}
			m.skipped.WithLabelValues(ev.Input, reason).Inc()
		case plugins.OutcomeUnmatched, plugins.OutcomeHeld:
		default:
			m.bytes.WithLabelValues(ev.Input, ev.FileType).Add(float64(ev.Bytes))
			m.records.WithLabelValues(ev.Input, ev.FileType, "inserted").Add(float64(ev.Counts.Inserted))
			m.records.WithLabelValues(ev.Input, ev.FileType, "duplicate").Add(float64(ev.Counts.Duplicate))
			m.records.WithLabelValues(ev.Input, ev.FileType, "rejected").Add(float64(ev.Counts.Rejected))
		}
	case "database":
		m.database(ev.Status == "up", ev.Reason)
	}
}

func (m *metrics) database(up bool, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.healthy, m.why = up, why
	if up {
		m.dbUp.Set(1)
	} else {
		m.dbUp.Set(0)
	}
}

// done records a run (or a watch loop) and how it ended.
func (m *metrics) done(s engine.Summary, err error, dbOK bool) {
	status := s.Status
	if status == "" {
		status = "idle"
		if err != nil {
			status = "failed"
		}
	}
	m.runs.WithLabelValues(status).Inc()
	if !s.Finished.IsZero() {
		m.runTime.Set(s.Finished.Sub(s.Started).Seconds())
	}
	if err == nil {
		m.lastOK.Set(float64(time.Now().UnixNano()) / 1e9)
	}
	why := ""
	if !dbOK && err != nil {
		why = err.Error()
	}
	m.database(dbOK, why)
}

// serve starts /metrics and /healthz on addr; mask cleans what /healthz
// says about an error.
func (m *metrics) serve(addr string, mask func(string) string) (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	all := prometheus.NewRegistry()
	all.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{m.reg, all}, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		ok, why := m.healthy, m.why
		m.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "database unreachable: %s\n", mask(why))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) // ends at Shutdown
	return srv, ln.Addr(), nil
}

// push sends the carpipe_* metrics to a Pushgateway, replacing the
// group's previous push: the job "carpipe", the pipeline, and the index
// of an Indexed Job's pod when there is one, so parallel pods do not
// overwrite each other. The URL's user and password go as basic auth.
func (m *metrics) push(ctx context.Context, gateway *url.URL, pipeline, index string) error {
	bare := *gateway
	bare.User = nil
	client := &pushClient{}
	p := push.New(bare.String(), "carpipe").Client(client).Gatherer(m.reg).Grouping("pipeline", pipeline)
	if u := gateway.User; u != nil {
		pw, _ := u.Password()
		p = p.BasicAuth(u.Username(), pw)
	}
	if index != "" {
		p = p.Grouping("index", index)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("pushing to %s: %s", gateway.Redacted(), client.why(err))
	}
	return nil
}

// pushClient sends a push and keeps what went wrong, to be told in words
// of carpipe's own: the library's errors quote the gateway's answer,
// which may echo the request and its credentials.
type pushClient struct {
	err    error // the request could not be made
	status int   // the gateway refused it
}

func (c *pushClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	switch {
	case err != nil:
		c.err = err
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted:
		c.status = resp.StatusCode
	}
	return resp, err
}

func (c *pushClient) why(err error) string {
	var ue *url.Error
	switch {
	case errors.As(c.err, &ue):
		return ue.Err.Error() // without the URL
	case c.err != nil:
		return "the request failed"
	case c.status != 0:
		return fmt.Sprintf("the gateway answered %d %s", c.status, http.StatusText(c.status))
	}
	return err.Error() // refused before sending, for the metrics' sake
}
