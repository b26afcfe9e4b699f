package fastcheck

import (
	"encoding/json"
	"math/big"
	"strconv"
)

type numberRules struct {
	min, max, xmin, xmax *bound
	multipleOf           *bound
}

// bound is a schema number, with its int64 form when it has one so that
// plain integer values compare without big.Rat.
type bound struct {
	r     *big.Rat
	i     int64
	isInt bool
}

func (n *node) number(num json.Number) bool {
	s := string(num)
	// gojsonschema's dependencies check takes the kind of any value, a
	// number's through big.Rat, and panics where big.Rat fails.
	if n.obj != nil && len(n.obj.deps) > 0 && !PlainInt(s) {
		if _, ok := new(big.Rat).SetString(s); !ok {
			return false
		}
	}
	if n.types != 0 && n.types&tNumber == 0 {
		if n.types&tInteger == 0 || !isInteger(s) {
			return false
		}
	}
	if n.num != nil && !n.num.valid(s) {
		return false
	}
	if n.numFormat != nil {
		r, _ := new(big.Rat).SetString(s) // nil when too big, as in gojsonschema
		return n.numFormat(r)
	}
	return true
}

// isInteger is gojsonschema's test: big.Rat parses it and it is whole,
// so 1.0 and 1e2 are integers and 1e1000001 (too big for big.Rat) is not.
func isInteger(s string) bool {
	if PlainInt(s) {
		return true
	}
	r, ok := new(big.Rat).SetString(s)
	return ok && r.IsInt()
}

// PlainInt reports an optional minus and digits only.
func PlainInt(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (nr *numberRules) valid(s string) bool {
	var i int64
	isInt := false
	if PlainInt(s) {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			i, isInt = v, true
		}
	}
	var r *big.Rat
	rat := func() bool {
		if r == nil {
			var ok bool
			// Where big.Rat fails, gojsonschema goes on with a nil *big.Rat
			// and panics.
			r, ok = new(big.Rat).SetString(s)
			return ok
		}
		return true
	}
	// cmp is v against b: -1, 0 or +1; false when v is beyond big.Rat.
	cmp := func(b *bound) (int, bool) {
		if isInt && b.isInt {
			switch {
			case i < b.i:
				return -1, true
			case i > b.i:
				return 1, true
			}
			return 0, true
		}
		if !rat() {
			return 0, false
		}
		return r.Cmp(b.r), true
	}
	if b := nr.max; b != nil {
		if c, ok := cmp(b); !ok || c > 0 {
			return false
		}
	}
	if b := nr.xmax; b != nil {
		if c, ok := cmp(b); !ok || c >= 0 {
			return false
		}
	}
	if b := nr.min; b != nil {
		if c, ok := cmp(b); !ok || c < 0 {
			return false
		}
	}
	if b := nr.xmin; b != nil {
		if c, ok := cmp(b); !ok || c <= 0 {
			return false
		}
	}
	if b := nr.multipleOf; b != nil {
		if isInt && b.isInt {
			return i%b.i == 0
		}
		return rat() && new(big.Rat).Quo(r, b.r).IsInt()
	}
	return true
}

// wild finds a number gojsonschema chokes on anywhere in v: one big.Rat
// cannot hold (bounds then meet a nil *big.Rat) or float64 cannot (enum and
// const then meet a nil string). Either panics, so where gojsonschema
// stops at the first passing schema (anyOf, contains), the fast path may
// skip a failing one only for a tame value.
func wild(v any) bool {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !jsonNumber(s) {
			return true
		}
		if PlainInt(s) && len(s) < 300 {
			return false // within float64 and big.Rat
		}
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return true
		}
		_, ok := new(big.Rat).SetString(s)
		return !ok
	case []any:
		for _, e := range x {
			if wild(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if wild(e) {
				return true
			}
		}
	}
	return false
}

// jsonNumber reports whether s is a number in JSON's grammar.
func jsonNumber(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func (c *compiler) number(m map[string]any) (*numberRules, error) {
	nr := &numberRules{}
	var err error
	if nr.multipleOf, err = numberKey(m, "multipleOf"); err != nil {
		return nil, err
	}
	if nr.multipleOf != nil && nr.multipleOf.r.Sign() <= 0 {
		return nil, errUnsupported
	}
	if nr.min, err = numberKey(m, "minimum"); err != nil {
		return nil, err
	}
	if nr.max, err = numberKey(m, "maximum"); err != nil {
		return nil, err
	}
	// Draft-04 booleans turn minimum and maximum exclusive; later drafts
	// take numbers of their own.
	for _, k := range []string{"exclusiveMinimum", "exclusiveMaximum"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		inclusive, exclusive := &nr.min, &nr.xmin
		if k == "exclusiveMaximum" {
			inclusive, exclusive = &nr.max, &nr.xmax
		}
		if c.draft == 4 {
			b, ok := v.(bool)
			if !ok || *inclusive == nil {
				return nil, errUnsupported
			}
			if b {
				*exclusive, *inclusive = *inclusive, nil
			}
			continue
		}
		if *exclusive, err = numberKey(m, k); err != nil {
			return nil, err
		}
	}
	if nr.multipleOf == nil && nr.min == nil && nr.max == nil && nr.xmin == nil && nr.xmax == nil {
		return nil, nil
	}
	return nr, nil
}

func numberKey(m map[string]any, key string) (*bound, error) {
	v, ok := m[key]
	if !ok {
		return nil, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return nil, errUnsupported
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return nil, errUnsupported
	}
	b := &bound{r: r}
	if r.IsInt() && r.Num().IsInt64() {
		b.i, b.isInt = r.Num().Int64(), true
	}
	return b, nil
}
