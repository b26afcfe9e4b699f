package schemas

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/carpipe/carpipe/plugins"
)

// benchFile is a vehicles_status file of n records like the generator's.
func benchFile(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"vehicle_status": [`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"vehicle_id": "%016x", "report_time": "2020-09-13T12:%02d:%02d.%03dZ", "status": "driving"}`, i%5000, i/60%60, i%60, i%1000)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// detectionFile is an objects_detection file of n records like the
// generator's, each with a nested detections array.
func detectionFile(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"objects_detection_events": [`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"vehicle_id": "%016x", "detection_time": "2020-09-13T12:%02d:%02d.%03dZ", "object_type": "car", "object_value": %d, "detections": [{"object_type": "pedestrian", "object_value": %d}, {"object_type": "car", "object_value": 2}]}`, i%5000, i/60%60, i%60, i%1000, i%10, i%7)
	}
	b.WriteString("]}")
	return b.Bytes()
}

func benchDecode(b *testing.B, workers int) {
	benchDecodeFile(b, workers, "vehicles_status_1600000000.json", benchFile(5000))
}

func benchDecodeFile(b *testing.B, workers int, name string, data []byte) {
	set, err := Load(".", Options{Workers: workers})
	if err != nil {
		b.Fatal(err)
	}
	ty, _, _ := set.Find(name)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		n := 0
		err := ty.Decode(context.Background(), func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, plugins.Limits{}, func(bt plugins.Batch) error { n += len(bt.Records); return nil })
		if err != nil || n != 5000 {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(5000*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecode is parse + validate + key of a 5,000-record file.
func BenchmarkDecode1(b *testing.B) { benchDecode(b, 1) }
func BenchmarkDecode2(b *testing.B) { benchDecode(b, 2) }

// BenchmarkScan is the reader alone: it cuts the records of a 5,000-record
// file, which Decode does on one goroutine for all the workers.
func BenchmarkScan(b *testing.B) {
	ty := &Type{Records: "/vehicle_status"}
	data := benchFile(5000)
	b.SetBytes(int64(len(data)))
	for range b.N {
		s := newScanner(bytes.NewReader(data), plugins.DefaultMaxRecord)
		parents, err := ty.seek(s)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for first := true; ; first = false {
			_, more, err := s.next(first)
			if err != nil {
				b.Fatal(err)
			}
			if !more {
				break
			}
			if _, err := s.record(); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if err := ty.finish(s, parents); err != nil || n != 5000 {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(5000*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecodeDetections is BenchmarkDecode1 for objects_detection.
func BenchmarkDecodeDetections(b *testing.B) {
	benchDecodeFile(b, 1, "objects_detection_1600000000.json", detectionFile(5000))
}

// BenchmarkRecord is one record's validation and key alone.
func BenchmarkRecord(b *testing.B) {
	benchRecord(b, "vehicles_status_1600000000.json", `{"vehicle_id": "00000000000004d2", "report_time": "2020-09-13T12:26:42.916Z", "status": "driving"}`)
}

// BenchmarkRecordDetections is one objects_detection record, detections and all.
func BenchmarkRecordDetections(b *testing.B) {
	benchRecord(b, "objects_detection_1600000000.json", `{"vehicle_id": "00000000000004d2", "detection_time": "2020-09-13T12:26:42.916Z", "object_type": "car", "object_value": 3, "detections": [{"object_type": "pedestrian", "object_value": 5}, {"object_type": "car", "object_value": 2}]}`)
}

func benchRecord(b *testing.B, name, record string) {
	set, _ := Load(".", Options{})
	ty, _, _ := set.Find(name)
	raw := []byte(record)
	for range b.N {
		if _, errs := ty.Record(raw); errs != nil {
			b.Fatal(errs)
		}
	}
}
