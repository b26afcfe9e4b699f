package tables

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/carpipe/carpipe/plugins"
)

// Scan calls fn with each stored record of t as a JSON object, in storage
// order, until fn returns an error; one query streams them all. t is the
// table as the database holds it (Stored). A record is its properties,
// NULL ones absent, then those of _extra: times in RFC 3339 (UTC, as
// stored), numbers as exact as the column keeps them, json columns as
// their JSON.
func Scan(ctx context.Context, db *sql.DB, d string, t plugins.Table, fn func(fileID int64, index int, record []byte) error) error {
	if err := check(t); err != nil {
		return err
	}
	cols := []string{quote(ColFileID), quote(ColIndex)}
	for _, c := range t.Columns {
		cols = append(cols, quote(c.Name))
	}
	cols = append(cols, quote(ColExtra))
	rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+quote(t.Name))
	if err != nil {
		return fmt.Errorf("reading table %s: %w", t.Name, err)
	}
	defer rows.Close()
	var (
		fileID int64
		index  int
		vals   = make([]any, len(t.Columns)+1)
		dest   = make([]any, len(vals)+2)
		b      bytes.Buffer
		e      = json.NewEncoder(&b)
	)
	e.SetEscapeHTML(false) // <, > and & as they are
	dest[0], dest[1] = &fileID, &index
	for i := range vals {
		dest[i+2] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("reading table %s: %w", t.Name, err)
		}
		b.Reset()
		b.WriteByte('{')
		for i, c := range t.Columns {
			if vals[i] == nil {
				continue
			}
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			writeString(&b, e, c.Property)
			b.WriteByte(':')
			if err := writeValue(&b, e, c.Type, vals[i]); err != nil {
				return fmt.Errorf("table %s, file %d, record %d, column %s: %w", t.Name, fileID, index, c.Name, err)
			}
		}
		if err := writeExtra(&b, vals[len(vals)-1]); err != nil {
			return fmt.Errorf("table %s, file %d, record %d, column %s: %w", t.Name, fileID, index, ColExtra, err)
		}
		b.WriteByte('}')
		if err := fn(fileID, index, b.Bytes()); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading table %s: %w", t.Name, err)
	}
	return nil
}

// writeValue writes a column's value as JSON, from what either driver
// gives: lib/pq numeric and jsonb as []byte, modernc.org/sqlite a
// datetime column as time.Time and a boolean as 0 or 1.
func writeValue(b *bytes.Buffer, e *json.Encoder, typ string, v any) error {
	if s, ok := v.([]byte); ok {
		v = string(s)
	}
	switch typ {
	case plugins.ColText:
		if s, ok := v.(string); ok {
			writeString(b, e, s)
			return nil
		}
	case plugins.ColTimestamp:
		switch v := v.(type) {
		case time.Time:
			v = v.UTC()
			b.WriteByte('"')
			if y := v.Year(); y >= 0 && y <= 9999 {
				b.Write(plugins.AppendTime(b.AvailableBuffer(), v, 'T'))
			} else {
				b.WriteString(v.Format(time.RFC3339Nano))
			}
			b.WriteByte('"')
			return nil
		case string:
			writeString(b, e, v)
			return nil
		}
	case plugins.ColInteger, plugins.ColNumber:
		switch v := v.(type) {
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
			return nil
		case float64:
			if math.IsInf(v, 0) || math.IsNaN(v) {
				return fmt.Errorf("%v is not a JSON number", v)
			}
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			return nil
		case string:
			if !isNumber(v) {
				return fmt.Errorf("%q is not a JSON number", v)
			}
			b.WriteString(v)
			return nil
		}
	case plugins.ColBoolean:
		switch v {
		case true, int64(1), "true", "1":
			b.WriteString("true")
			return nil
		case false, int64(0), "false", "0":
			b.WriteString("false")
			return nil
		}
	case plugins.ColJSON:
		if s, ok := v.(string); ok {
			if err := json.Compact(b, []byte(s)); err != nil {
				return fmt.Errorf("not JSON: %w", err)
			}
			return nil
		}
	}
	return fmt.Errorf("unexpected %T value %v for a %s column", v, v, typ)
}

func isNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}

// writeExtra writes the members of the _extra object after the
// properties.
func writeExtra(b *bytes.Buffer, v any) error {
	var s []byte
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		s = []byte(v)
	case []byte:
		s = v
	default:
		return fmt.Errorf("unexpected %T value", v)
	}
	var c bytes.Buffer
	if err := json.Compact(&c, s); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	o := c.Bytes()
	if len(o) < 2 || o[0] != '{' {
		return fmt.Errorf("not a JSON object: %s", o)
	}
	if o = o[1 : len(o)-1]; len(o) > 0 {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.Write(o)
	}
	return nil
}

// writeString writes s as a JSON string through e, which writes to b.
func writeString(b *bytes.Buffer, e *json.Encoder, s string) {
	e.Encode(s)             // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}
