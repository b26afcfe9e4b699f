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

func benchDecode(b *testing.B, workers int) {
	set, err := Load(".", Options{Workers: workers})
	if err != nil {
		b.Fatal(err)
	}
	ty, _, _ := set.Find("vehicles_status_1600000000.json")
	data := benchFile(5000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		n := 0
		err := ty.Decode(context.Background(), func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, func(bt plugins.Batch) error { n += len(bt.Records); return nil })
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
		s := newScanner(bytes.NewReader(data))
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
		if err := finish(s, parents); err != nil || n != 5000 {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(5000*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRecord is one record's validation and key alone.
func BenchmarkRecord(b *testing.B) {
	set, _ := Load(".", Options{})
	ty, _, _ := set.Find("vehicles_status_1600000000.json")
	raw := []byte(`{"vehicle_id": "00000000000004d2", "report_time": "2020-09-13T12:26:42.916Z", "status": "driving"}`)
	for range b.N {
		if _, errs := ty.Record(raw); errs != nil {
			b.Fatal(errs)
		}
	}
}
