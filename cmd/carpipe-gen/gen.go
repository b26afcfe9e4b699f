package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Run writes --files files of --records records, half of each car type.
func Run(args []string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("carpipe-gen", flag.ContinueOnError)
	f.SetOutput(stderr)
	out := f.String("out", "bench-data", "folder to write to")
	files := f.Int("files", 200, "number of files")
	records := f.Int("records", 5000, "records per file")
	dup := f.Float64("dup", 0.01, "fraction of records repeating an earlier key")
	bad := f.Float64("bad", 0, "fraction of invalid records")
	seed := f.Uint64("seed", 1, "random seed; the same seed writes the same bytes")
	typed := f.String("typed-csv", "", "also write every valid record, duplicates included, flattened into one CSV file per hand-made table (objects_detection.csv, vehicle_status.csv) in this folder")
	if err := f.Parse(args); err != nil {
		return 2
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	g := &gen{rnd: rand.New(rand.NewPCG(*seed, 0x636172)), dup: *dup, bad: *bad, keys: map[string][]string{}}
	if *typed != "" {
		if err := g.openCSV(*typed); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	var n int
	for i := 0; i < *files; i++ {
		kind := kinds[i%2]
		name := fmt.Sprintf("%s_%d.json", kind.prefix, 1600000000+i*60)
		if err := g.file(filepath.Join(*out, name), kind, *records); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		n += *records
	}
	if err := g.closeCSV(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %d files of %d records to %s\n", *files, *records, *out)
	if *typed != "" {
		fmt.Fprintf(stdout, "wrote %d valid records to %s\n", g.rows, *typed)
	}
	return 0
}

// openCSV creates one CSV file per kind, named after its hand-made table.
func (g *gen) openCSV(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	g.csv = map[string]*bufio.Writer{}
	for _, k := range kinds {
		f, err := os.Create(filepath.Join(dir, k.table+".csv"))
		if err != nil {
			g.closeCSV()
			return err
		}
		g.files = append(g.files, f)
		g.csv[k.prefix] = bufio.NewWriterSize(f, 1<<20)
	}
	return nil
}

func (g *gen) closeCSV() error {
	var first error
	for i, f := range g.files {
		if err := g.csv[kinds[i].prefix].Flush(); err != nil && first == nil {
			first = err
		}
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	g.files = nil
	return first
}

type kind struct {
	prefix, array, timeField string
	table                    string // the table a person would write by hand
}

var kinds = []kind{
	{"objects_detection", "objects_detection_events", "detection_time", "objects_detection"},
	{"vehicles_status", "vehicle_status", "report_time", "vehicle_status"},
}

type gen struct {
	rnd   *rand.Rand
	dup   float64
	bad   float64
	clock int64
	keys  map[string][]string      // recent (vehicle, time) pairs per file type, for duplicates
	csv   map[string]*bufio.Writer // per kind prefix, when --typed-csv is given
	files []*os.File
	rows  int
}

var objects = []string{"pedestrian", "car", "bicycle", "sign", "truck", "animal"}
var statuses = []string{"driving", "parked", "charging", "idle", "error"}

func (g *gen) file(path string, k kind, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "{\"%s\": [\n", k.array)
	for i := 0; i < n; i++ {
		if i > 0 {
			w.WriteString(",\n")
		}
		vehicle, ts := g.key(k)
		w.WriteString(g.record(k, vehicle, ts))
	}
	w.WriteString("\n]}\n")
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// key picks a fresh (vehicle, time), or with probability dup an earlier one.
func (g *gen) key(k kind) (string, string) {
	keys := g.keys[k.prefix]
	if len(keys) > 0 && g.rnd.Float64() < g.dup {
		p := keys[g.rnd.IntN(len(keys))]
		return p[:16], p[16:]
	}
	g.clock += 1 + g.rnd.Int64N(3)
	vehicle := fmt.Sprintf("%016x", g.rnd.Uint64()%5000)
	ts := time.Unix(1600000000+g.clock, int64(g.rnd.IntN(1000))*1e6).UTC().Format("2006-01-02T15:04:05.000Z")
	if len(keys) < 10000 {
		g.keys[k.prefix] = append(keys, vehicle+ts)
	} else {
		keys[g.rnd.IntN(len(keys))] = vehicle + ts
	}
	return vehicle, ts
}

func (g *gen) record(k kind, vehicle, ts string) string {
	invalid := g.bad > 0 && g.rnd.Float64() < g.bad
	var rec, row string
	if k.prefix == "objects_detection" {
		value := strconv.Itoa(g.rnd.IntN(20))
		if invalid {
			value = `"many"`
		}
		obj := objects[g.rnd.IntN(len(objects))]
		detections := fmt.Sprintf(`[{"object_type": "%s", "object_value": %d}]`, obj, g.rnd.IntN(5))
		rec = fmt.Sprintf(`{"vehicle_id": "%s", "detection_time": "%s", "object_type": "%s", "object_value": %s, "detections": %s}`,
			vehicle, ts, obj, value, detections)
		row = vehicle + "," + ts + "," + obj + "," + value + "," + csvQuote(detections)
	} else {
		status := statuses[g.rnd.IntN(len(statuses))]
		if invalid {
			rec = fmt.Sprintf(`{"vehicle_id": "%s", "report_time": "%s", "status": 42}`, vehicle, ts)
		} else {
			rec = fmt.Sprintf(`{"vehicle_id": "%s", "report_time": "%s", "status": "%s"}`, vehicle, ts, status)
		}
		row = vehicle + "," + ts + "," + status
	}
	// Duplicates go in as they are in the files: the loader de-duplicates.
	if g.csv != nil && !invalid {
		w := g.csv[k.prefix]
		w.WriteString(row)
		w.WriteByte('\n')
		g.rows++
	}
	return rec
}

func csvQuote(s string) string {
	out := make([]byte, 0, len(s)+8)
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			out = append(out, '"')
		}
		out = append(out, s[i])
	}
	return string(append(out, '"'))
}
