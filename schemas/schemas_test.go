package schemas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

func shipped(t testing.TB, o Options) *Set {
	t.Helper()
	s, err := Load(".", o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decodeAll(t *testing.T, ty *Type, data string) ([]plugins.Record, []plugins.Reject, error) {
	t.Helper()
	var recs []plugins.Record
	var rejs []plugins.Reject
	err := ty.Decode(context.Background(), func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(data)), nil
	}, plugins.Limits{}, func(b plugins.Batch) error {
		recs = append(recs, b.Records...)
		rejs = append(rejs, b.Rejects...)
		return nil
	})
	return recs, rejs, err
}

func TestRoute(t *testing.T) {
	s := shipped(t, Options{})
	ty, ts, err := s.Route("vehicles_status_1600000000.json")
	if err != nil || ty == nil || ty.Name() != "vehicles_status" {
		t.Fatalf("got %v %v", ty, err)
	}
	if want := time.Unix(1600000000, 0).UTC(); ts == nil || !ts.Equal(want) {
		t.Fatalf("file time %v, want %v", ts, want)
	}
	for _, name := range []string{"vehicles_status_1600000000.json.tmp", "other.json", "objects_detection_12.json"} {
		if ty, _, err := s.Route(name); ty != nil || err != nil {
			t.Errorf("%s: routed to %v, %v", name, ty, err)
		}
	}
}

func TestDecodeKeysAndTimes(t *testing.T) {
	ty, _, _ := shipped(t, Options{Workers: 3, BatchSize: 2}).Find("vehicles_status_1600000000.json")
	data := `{"vehicle_status": [
		{"vehicle_id": "a", "report_time": "2020-01-01T14:05:11Z", "status": "driving"},
		{"vehicle_id": "a", "report_time": "2020-01-01T16:05:11.1234567+02:00", "status": "x"},
		{"vehicle_id": "b", "report_time": "2020-01-01T14:05:11Z", "status": "parked", "extra": [1, 2.0]},
		{"vehicle_id": "c", "report_time": "2020-01-01T14:05:11Z", "status": "p"},
		{"vehicle_id": "d", "report_time": "2020-01-01T14:05:11Z", "status": "p"}
	], "trailer": {"ok": true}}`
	recs, rejs, err := decodeAll(t, ty, data)
	if err != nil || len(rejs) != 0 {
		t.Fatal(err, rejs)
	}
	if len(recs) != 5 {
		t.Fatalf("%d records", len(recs))
	}
	for i, r := range recs {
		if r.Index != i {
			t.Fatalf("record %d has index %d: order lost", i, r.Index)
		}
	}
	if recs[0].Key != `["a","2020-01-01T14:05:11.000000Z"]` {
		t.Errorf("key %s", recs[0].Key)
	}
	if recs[1].Key != `["a","2020-01-01T14:05:11.123456Z"]` {
		t.Errorf("offset time not normalised to UTC µs: %s", recs[1].Key)
	}
	if got := recs[1].EventTime.Format(TimeLayout); got != "2020-01-01T14:05:11.123456Z" {
		t.Errorf("event time %s", got)
	}
	if string(recs[2].Payload) != `{"vehicle_id":"b","report_time":"2020-01-01T14:05:11Z","status":"parked","extra":[1,2.0]}` {
		t.Errorf("payload %s", recs[2].Payload)
	}
}

func TestInvalidRecords(t *testing.T) {
	ty, _, _ := shipped(t, Options{}).Find("objects_detection_1600000000.json")
	data := `{"objects_detection_events": [
		{"vehicle_id": "a", "detection_time": "2020-01-01T00:00:00Z", "object_type": "car", "object_value": 1},
		{"vehicle_id": "a", "detection_time": "yesterday", "object_value": "3"},
		{"detection_time": "2020-01-01T00:00:00Z"}
	]}`
	recs, rejs, err := decodeAll(t, ty, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || len(rejs) != 2 {
		t.Fatalf("%d records, %d rejects", len(recs), len(rejs))
	}
	if rejs[0].Pointer != "/objects_detection_events/1" || rejs[0].Index != 1 {
		t.Errorf("reject at %s index %d", rejs[0].Pointer, rejs[0].Index)
	}
	got := map[string]string{}
	for _, e := range rejs[0].Errors {
		got[e.Pointer] = e.Message
	}
	if got["/object_value"] != `"object_value": expected integer, got string "3"` {
		t.Errorf("type error: %q", got["/object_value"])
	}
	if !strings.Contains(got["/detection_time"], `does not match format "date-time"`) {
		t.Errorf("format error: %q", got["/detection_time"])
	}
	if e := rejs[1].Errors[0]; e.Pointer != "/vehicle_id" || e.Message != `"vehicle_id": is required` {
		t.Errorf("required error: %+v", e)
	}
	if string(rejs[1].Payload) != `{"detection_time": "2020-01-01T00:00:00Z"}` {
		t.Errorf("raw payload %q", rejs[1].Payload)
	}
}

func TestBadFiles(t *testing.T) {
	ty, _, _ := shipped(t, Options{}).Find("vehicles_status_1600000000.json")
	cases := []struct{ name, data, want string }{
		{"empty", "", "empty file"},
		{"blank", "  \n ", "empty file"},
		{"truncated", `{"vehicle_status": [{"vehicle_id": "a"`, "line 1, column 39"},
		{"syntax", "{\"vehicle_status\": [\n  {\"vehicle_id\": \"a\",, }]}", "line 2, column 22"},
		{"no member", `{"other": []}`, `has no "vehicle_status" member`},
		{"not array", `{"vehicle_status": {}}`, "expected an array of records at /vehicle_status, got an object"},
		{"trailing", `{"vehicle_status": []} []`, "unexpected data after the end"},
		{"unclosed parent", `{"vehicle_status": [], "x": 1`, "unexpected end of file"},
		{"bad utf8", "{\"vehicle_status\": [{\"vehicle_id\": \"a\xff\"}]}", "invalid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := decodeAll(t, ty, c.data)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestUTF8AcrossReads(t *testing.T) {
	ty, _, _ := shipped(t, Options{}).Find("vehicles_status_1600000000.json")
	var b strings.Builder
	b.WriteString("\xEF\xBB\xBF{\"vehicle_status\": [")
	for i := 0; i < 5000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"vehicle_id": "véhicule-€-%d", "report_time": "2020-01-01T00:00:00Z", "status": "ok"}`, i)
	}
	b.WriteString("]}")
	recs, rejs, err := decodeAll(t, ty, b.String())
	if err != nil || len(rejs) > 0 || len(recs) != 5000 {
		t.Fatalf("%d records, %v, %v", len(recs), rejs, err)
	}
}

func TestFnErrorStops(t *testing.T) {
	ty, _, _ := shipped(t, Options{BatchSize: 1}).Find("vehicles_status_1600000000.json")
	data := `{"vehicle_status": [` + strings.Repeat(`{"vehicle_id": "a", "report_time": "2020-01-01T00:00:00Z", "status": "ok"},`, 50) + `{"vehicle_id": "a", "report_time": "2020-01-01T00:00:00Z", "status": "ok"}]}`
	boom := errors.New("boom")
	calls := 0
	err := ty.Decode(context.Background(), func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(data)), nil
	}, plugins.Limits{}, func(plugins.Batch) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestNoKeyAndNumbers(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "trip.schema.json", `{"type":"object","x-carpipe":{"time":"t"}}`)
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ty, _, _ := s.Find("trip_123.json")
	recs, _, err := decodeAll(t, ty, `[{"a":1,"b":{"y":1,"x":2},"t":1600000000.5},{"b":{"x":2,"y":1.0},"a":1e0,"t":1600000000.5}]`)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Key != recs[1].Key || !strings.HasPrefix(recs[0].Key, "sha256:") {
		t.Fatalf("same content, keys %s and %s", recs[0].Key, recs[1].Key)
	}
	if got := recs[0].EventTime.Format(TimeLayout); got != "2020-09-13T12:26:40.500000Z" {
		t.Fatalf("unix time %s", got)
	}
}

// TestHugeNumbers: gojsonschema panics comparing numbers beyond float64
// (1e400 under "enum"); such a record is rejected with a message and its
// neighbours load. Numbers beyond big.Rat, where it panics on "minimum",
// are beyond what the databases store and never reach it.
func TestHugeNumbers(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "m.schema.json", `{"type":"object","properties":{"n":{"minimum":0},"e":{"enum":[1,2]}}}`)
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ty, _, _ := s.Find("m_1.json")
	recs, rejs, err := decodeAll(t, ty, `[{"n":1},{"n":1e1000001},{"e":1e400},{"e":2}]`)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || len(rejs) != 2 || rejs[0].Index != 1 || rejs[1].Index != 2 {
		t.Fatalf("records %+v, rejects %+v; want records 0 and 3, rejects 1 and 2", recs, rejs)
	}
	if msg := rejs[0].Errors[0].Message; !strings.Contains(msg, "beyond what the databases store") {
		t.Errorf("reject 1: %q", msg)
	}
	if msg := rejs[1].Errors[0].Message; !strings.Contains(msg, "cannot be checked against the schema") {
		t.Errorf("reject 2: %q", msg)
	}
}

func write(t testing.TB, dir, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSchemaProblems(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, `{"type":"object"}`)
	}))
	defer srv.Close()
	cases := []struct{ name, schema, want string }{
		{"remote ref", `{"properties":{"a":{"$ref":"` + srv.URL + `/x.json"}}}`, "never fetches"},
		{"file ref", `{"$ref":"file:///etc/passwd"}`, "never fetches"},
		{"parent ref", `{"$ref":"../x.json"}`, "leaves the schemas folder"},
		{"2020-12", `{"$schema":"https://json-schema.org/draft/2020-12/schema"}`, "draft 2020-12"},
		{"2019-09", `{"$schema":"https://json-schema.org/draft/2019-09/schema#"}`, "draft 2019-09"},
		{"unknown meta key", `{"x-carpipe":{"mach":"x"}}`, `unknown field "mach"`},
		{"bad regex", `{"x-carpipe":{"match":"("}}`, "match:"},
		{"bad mode", `{"x-carpipe":{"on_invalid_record":"drop"}}`, "on_invalid_record"},
		{"key typo", `{"properties":{"id":{}},"x-carpipe":{"key":["idd"]}}`, `key field "idd" must be a declared property of the record schema`},
		{"bad pointer", `{"x-carpipe":{"records":"items"}}`, "not a JSON Pointer"},
		{"abs id with file ref", `{"$id":"` + srv.URL + `/s.json","properties":{"a":{"$ref":"common.json"}}}`, "$id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "common.json", `{"type":"string"}`)
			write(t, dir, "bad.schema.json", c.schema)
			_, err := Load(dir, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.schema.json") {
				t.Fatalf("got %v, want %q naming the schema", err, c.want)
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("schemas made %d network requests", hits.Load())
	}
}

func TestLocalRefs(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "common.json", `{"definitions":{"id":{"type":"string","minLength":2}}}`)
	write(t, dir, "thing.schema.json", `{"type":"object","properties":{"id":{"$ref":"common.json#/definitions/id"},"n":{"$ref":"#/definitions/n"}},"definitions":{"n":{"type":"integer"}},"x-carpipe":{"key":["id"]}}`)
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ty, _, _ := s.Find("thing_1.json")
	recs, rejs, err := decodeAll(t, ty, `[{"id":"ab","n":1},{"id":"a","n":1.5}]`)
	if err != nil || len(recs) != 1 || len(rejs) != 1 || len(rejs[0].Errors) != 2 {
		t.Fatalf("%v %v %v", recs, rejs, err)
	}
}

func TestAmbiguous(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.schema.json", `{"x-carpipe":{"match":"^x_"}}`)
	write(t, dir, "b.schema.json", `{"x-carpipe":{"match":"_1\\.json$"}}`)
	s, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Route("x_1.json"); err == nil || !strings.Contains(err.Error(), "a, b") {
		t.Fatalf("got %v", err)
	}
}

func TestAppendTime(t *testing.T) {
	times := []time.Time{
		time.Date(2020, 9, 13, 12, 26, 40, 500000000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(2020, 1, 1, 14, 5, 11, 0, time.FixedZone("x", 3600)),
	}
	for _, ts := range times {
		if got, want := string(appendTime(nil, ts)), ts.Format(TimeLayout); got != want {
			t.Errorf("%v: %s, want %s", ts, got, want)
		}
	}
}

var _ = bytes.NewReader
