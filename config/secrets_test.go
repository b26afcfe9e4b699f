package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSecrets(t *testing.T) {
	type auth struct {
		Token string `secret:"true"`
		User  string
	}
	pw := "ptr-secret"
	type conf struct {
		Password string `secret:"true"`
		Empty    string `secret:"true"`
		Host     string
		DSN      string `secret:"true"`
		URL      string `secret:"true"`
		Auth     auth
		AuthPtr  *auth
		Ptr      *string           `secret:"true"`
		Keys     []string          `secret:"true"`
		Headers  map[string]string `secret:"true"`
		Many     []auth
		Any      any
		Self     *conf
		hidden   string `secret:"true"`
	}
	c := &conf{
		Password: "hunter2",
		Host:     "db.local",
		DSN:      "host=db user=u password=dsn-pw dbname=d",
		URL:      "postgres://carl:p%40ss@db.local:5432/cars?sslmode=disable",
		Auth:     auth{Token: "tok-1", User: "carl"},
		AuthPtr:  &auth{Token: "tok-2"},
		Ptr:      &pw,
		Keys:     []string{"k1", "", "k2"},
		Headers:  map[string]string{"Authorization": "Bearer xyz"},
		Many:     []auth{{Token: "tok-3"}, {Token: "hunter2"}},
		Any:      auth{Token: "tok-4"},
		hidden:   "unexported fields are not config",
	}
	c.Self = c // cycles must not hang

	got := Secrets(c)
	for _, s := range []string{"hunter2", "tok-1", "tok-2", "tok-3", "tok-4", "ptr-secret", "k1", "k2", "Bearer xyz", "p@ss", "p%40ss", "dsn-pw", c.URL, c.DSN} {
		if !contains(got, s) {
			t.Errorf("Secrets() = %q, missing %q", got, s)
		}
	}
	for _, s := range []string{"db.local", "carl", "", "unexported fields are not config"} {
		if contains(got, s) {
			t.Errorf("Secrets() = %q, should not hold %q", got, s)
		}
	}
	seen := map[string]bool{}
	for i, s := range got {
		if seen[s] {
			t.Errorf("%q listed twice", s)
		}
		seen[s] = true
		if i > 0 && len(s) > len(got[i-1]) {
			t.Errorf("%q comes after the shorter %q; longest must come first", s, got[i-1])
		}
	}
}

func TestSecretsPasswords(t *testing.T) {
	type one struct {
		V string `secret:"true"`
	}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"postgres://u:pw@h/db", []string{"postgres://u:pw@h/db", "pw"}},
		{"postgres://u:p%2Fw@h/db", []string{"postgres://u:p%2Fw@h/db", "p%2Fw", "p/w"}},
		{"postgres://u@h/db", []string{"postgres://u@h/db"}},
		{"mysql://u:a/b@h/db", []string{"mysql://u:a/b@h/db", "a/b"}}, // not a valid URL, still masked
		{"host=h password=pw dbname=d", []string{"host=h password=pw dbname=d", "pw"}},
		{"password=pw", []string{"password=pw", "pw"}},
		{"host=h PASSWORD = pw", []string{"host=h PASSWORD = pw", "pw"}},
		{"Server=h;Password=pw2;Database=d", []string{"Server=h;Password=pw2;Database=d", "pw2"}},
		{`host=h password='a b\'c'`, []string{`host=h password='a b\'c'`, `a b\'c`, `a b'c`}},
		{"host=h mypassword=x", []string{"host=h mypassword=x"}},
		{"just-a-token", []string{"just-a-token"}},
	} {
		got := Secrets(&one{tc.in})
		if !sameSet(got, tc.want) {
			t.Errorf("Secrets(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Secrets(nil); len(got) != 0 {
		t.Errorf("Secrets(nil) = %q", got)
	}
	if got := Secrets(one{"by value"}); !sameSet(got, []string{"by value"}) {
		t.Errorf("Secrets of a struct value = %q", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range b {
		if !contains(a, s) {
			return false
		}
	}
	return true
}

// TestNoSecretInProblems feeds a secret through every kind of failure that
// could echo a value and checks that no message holds it.
func TestNoSecretInProblems(t *testing.T) {
	const secret = "s3cr3t:pw@example{}"
	env := mapEnv(map[string]string{"SECRET": secret, "NUM": "123456789", "EMPTY": ""})
	conf := []byte(`version: ${SECRET}
name: x
schemas: ${MISSING:?must point at the schemas}
inputs:
  - name: ${SECRET}
    type: t
  - name: ok
    type: ${SECRET}
outputs:
  - name: db
    type: postgres
    port: ${SECRET}
    tls: ${SECRET}
    hosts: ${SECRET}
    enabled: ${SECRET}
    timeout: ${SECRET}
    since: ${SECRET}
    small: ${NUM}
    unknown: ${SECRET}
    password: ${SECRET}
    again: ${EMPTY:?needed}
`)
	c, err := Parse("c.yaml", conf, env)
	if err == nil {
		t.Fatal("Parse accepted a broken config")
	}
	check := func(what string, err error) {
		t.Helper()
		var ps Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("%s: got %v, want problems", what, err)
		}
		for _, p := range ps {
			for _, s := range []string{secret, "s3cr3t", "123456789"} {
				if strings.Contains(p.Msg, s) {
					t.Errorf("%s: problem %q shows a secret", what, p.Msg)
				}
			}
		}
	}
	check("Load", err)
	var v struct {
		Port     int                 `yaml:"port"`
		TLS      struct{ CA string } `yaml:"tls"`
		Hosts    []string            `yaml:"hosts"`
		Enabled  bool                `yaml:"enabled"`
		Timeout  time.Duration       `yaml:"timeout"`
		Since    time.Time           `yaml:"since"`
		Small    int8                `yaml:"small"`
		Password string              `yaml:"password" secret:"true"`
		Again    string              `yaml:"again"`
	}
	err = c.Decode(c.Outputs[0], &v)
	check("Decode", err)
	const what = ` in output "db" (type postgres)`
	want := strings.Join([]string{
		`c.yaml:12:11: "port"` + what + ` must be an integer`,
		`c.yaml:13:10: "tls"` + what + ` must be a mapping, not a string`,
		`c.yaml:14:12: "hosts"` + what + ` must be a list`,
		`c.yaml:15:14: "enabled"` + what + ` must be true or false`,
		`c.yaml:16:14: "timeout"` + what + ` must be a duration such as 30s`,
		`c.yaml:17:12: "since"` + what + ` must be a time such as 2006-01-02T15:04:05Z`,
		`c.yaml:18:12: "small"` + what + ` must be an integer that fits in int8`,
		`c.yaml:19:5: unknown key "unknown"` + what + `; known keys: again, enabled, hosts, name, password, port, since, small, timeout, tls, type`,
		`c.yaml:21:12: variable EMPTY is empty: needed`,
	}, "\n")
	if err.Error() != want {
		t.Errorf("Decode:\n%v\nwant:\n%s", err, want)
	}
	if v.Password != secret || !reflect.DeepEqual(Secrets(&v), []string{secret}) {
		t.Errorf("password = %q, Secrets = %q", v.Password, Secrets(&v))
	}
}
