package config

import (
	"cmp"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Secrets returns the non-empty strings held, at any depth, by fields of v
// tagged secret:"true", plus the password inside any of them that is a URL
// with userinfo or a key=value DSN. Longest come first, so that a masker
// replacing them in order hides a whole secret before any part of it.
func Secrets(v any) []string {
	s := secrets{seen: map[string]bool{}, ptrs: map[uintptr]bool{}}
	s.walk(reflect.ValueOf(v), false)
	slices.SortFunc(s.out, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	return s.out
}

type secrets struct {
	out  []string
	seen map[string]bool
	ptrs map[uintptr]bool // guards against cycles
}

func (s *secrets) walk(v reflect.Value, secret bool) {
	switch v.Kind() {
	case reflect.String:
		if secret {
			s.add(v.String())
		}
	case reflect.Pointer:
		if v.IsNil() || s.ptrs[v.Pointer()] {
			return
		}
		s.ptrs[v.Pointer()] = true
		s.walk(v.Elem(), secret)
	case reflect.Interface:
		s.walk(v.Elem(), secret)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if sf := t.Field(i); sf.IsExported() || sf.Anonymous {
				s.walk(v.Field(i), secret || sf.Tag.Get("secret") == "true")
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			s.walk(v.Index(i), secret)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			s.walk(it.Value(), secret)
		}
	}
}

// dsnPassword finds password=... in "host=h password=pw" or
// "Server=h;Password=pw", quoted with '...' or not.
var dsnPassword = regexp.MustCompile(`(?i)(?:^|[\s;])password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s;]*)`)

func (s *secrets) add(v string) {
	if v == "" || s.seen[v] {
		return
	}
	s.seen[v] = true
	s.out = append(s.out, v)
	if _, rest, ok := strings.Cut(v, "://"); ok {
		if u, err := url.Parse(v); err == nil && u.User != nil {
			pw, _ := u.User.Password()
			s.add(pw)
			// Logs show the URL as written, so mask the escaped form too.
			s.add(strings.TrimPrefix(url.UserPassword("", pw).String(), ":"))
		} else if info, _, ok := strings.Cut(rest, "@"); ok {
			_, pw, _ := strings.Cut(info, ":")
			s.add(pw)
		}
	}
	for _, m := range dsnPassword.FindAllStringSubmatch(v, -1) {
		pw := m[1]
		if len(pw) >= 2 && pw[0] == '\'' {
			pw = pw[1 : len(pw)-1]
			s.add(pw)
			pw = strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(pw)
		}
		s.add(pw)
	}
}
