package config

import (
	"os"
	"regexp"
	"strings"
)

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// varError is one failed reference. Env errors depend on the environment
// (and may be deferred); the others are mistakes in the file itself.
type varError struct {
	msg string
	env bool
}

// Expand replaces ${VAR}, ${VAR:-default} and ${VAR:?message} in s, and $$
// with $. It returns the result and a message per failed reference. Values
// from the environment are inserted as they are, never expanded again, and
// never appear in the messages. A nil env means os.LookupEnv.
func Expand(s string, env Lookup) (string, []string) {
	if env == nil {
		env = os.LookupEnv
	}
	out, errs, _ := expand(s, env)
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.msg)
	}
	return out, msgs
}

// expand is Expand; fromEnv tells whether the result starts with text
// from the environment rather than from the file, which decides what a
// relative path is relative to.
func expand(s string, env Lookup) (out string, errs []varError, fromEnv bool) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), errs, fromEnv
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				errs = append(errs, varError{msg: `malformed variable reference: "${" without a closing "}"`})
				return b.String(), errs, fromEnv
			}
			v, set, err := lookup(s[i+2:i+end], env)
			if b.Len() == 0 && v != "" {
				fromEnv = set
			}
			b.WriteString(v)
			if err != nil {
				errs = append(errs, *err)
			}
			s = s[i+end+1:]
		default:
			b.WriteByte('$')
			s = s[i+1:]
		}
	}
}

// lookup resolves the inside of one ${...}; fromEnv is false when the
// value is the reference's default.
func lookup(ref string, env Lookup) (v string, fromEnv bool, err *varError) {
	name := varName.FindString(ref)
	op, arg := ref[len(name):], ""
	if len(op) >= 2 {
		op, arg = op[:2], op[2:]
	}
	if name == "" || (op != "" && op != ":-" && op != ":?") || strings.Contains(arg, "${") {
		return "", false, &varError{msg: `malformed variable reference "${` + ref + `}" (use ${NAME}, ${NAME:-default} or ${NAME:?message})`}
	}
	v, ok := env(name)
	switch {
	case op == "" && !ok:
		return "", false, &varError{msg: "variable " + name + " is not set", env: true}
	case op == ":-" && v == "":
		return arg, false, nil
	case op == ":?" && v == "":
		msg := "variable " + name + " is not set"
		if ok {
			msg = "variable " + name + " is empty"
		}
		if arg != "" {
			msg += ": " + arg
		}
		return "", false, &varError{msg: msg, env: true}
	}
	return v, true, nil
}
