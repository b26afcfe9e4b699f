package schemas

import (
	"slices"
	"testing"

	"github.com/carpipe/carpipe/plugins"
)

func TestIdent(t *testing.T) {
	long := "a23456789_123456789_123456789_123456789_123456789_123456789_1234567"
	for in, want := range map[string]string{
		"vehicle_id":  "vehicle_id",
		"Speed km/h":  "speed_km_h",
		"2nd":         "_2nd",
		"":            "_",
		"größe":       "gr__e",
		`quote"d`:     "quote_d",
		"a.b-c":       "a_b_c",
		long:          long[:63],
		"SELECT":      "select",
		"_already_ok": "_already_ok",
	} {
		if got := Ident(in); got != want {
			t.Errorf("Ident(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestViewColumns(t *testing.T) {
	typ := &Type{name: "t", Properties: []Property{
		{Name: "A"}, {Name: "a", Type: "integer"}, {Name: "a_2", Type: "boolean"}, {Name: "created_at", Type: "string", Format: "date-time"},
		{Name: "created_at_", Type: "number"}, {Name: "x", Type: "string", Format: "email"}, {Name: "y", Type: "array"},
	}}
	set := &Set{Types: []*Type{typ, {name: "records"}, {name: "Records"}}}
	views := set.Views()
	var names []string
	for _, v := range views {
		names = append(names, v.Name)
	}
	if want := []string{"t", "records_view", "records_view_2"}; !slices.Equal(names, want) {
		t.Errorf("view names %v, want %v", names, want)
	}
	want := []plugins.Column{
		// "A" is not plain, so "a" keeps its name and "A" takes the next free one.
		{Name: "a_3", Property: "A", Type: plugins.ColJSON},
		{Name: "a", Property: "a", Type: plugins.ColInteger},
		{Name: "a_2", Property: "a_2", Type: plugins.ColBoolean},
		// Fixed columns win; a property that is already the mapped name keeps it.
		{Name: "created_at__2", Property: "created_at", Type: plugins.ColTimestamp},
		{Name: "created_at_", Property: "created_at_", Type: plugins.ColNumber},
		{Name: "x", Property: "x", Type: plugins.ColText},
		{Name: "y", Property: "y", Type: plugins.ColJSON},
	}
	if got := views[0].Columns; !slices.Equal(got, want) {
		t.Errorf("columns\n%v\nwant\n%v", got, want)
	}
}
