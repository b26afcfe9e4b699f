package docs

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// block is one fenced code block of a Markdown file.
type block struct {
	file string
	line int // of the opening fence, 1-based
	lang string
	text string
	// What the HTML comments right above the fence say about it.
	notRun string // why it is not run; "" when it is
	exit   []int  // expected exit codes of its last commands; none: every one exits 0
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// shell reports whether a block is a shell example, which must run or say
// why it cannot.
func (b block) shell() bool {
	switch b.lang {
	case "sh", "bash", "shell", "console":
		return true
	}
	return false
}

var (
	fence      = regexp.MustCompile("^( *)(```+|~~~+)\\s*([^`\\s]*)")
	annotation = regexp.MustCompile(`^\s*<!--\s*(.*?)\s*-->\s*$`)
)

// blocks reads the fenced blocks of a Markdown file. Every block must name
// its language, so that no command hides in an untyped one, and the
// comments above a fence must be ones this test understands.
func blocks(file string) ([]block, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	var out []block
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, marker := m[1], m[2]
		b := block{file: file, line: i + 1, lang: m[3]}
		if b.lang == "" {
			return nil, fmt.Errorf("%s: a fenced block without a language: name it (text, sh, yaml, ...)", b)
		}
		if err := b.annotate(lines[:i]); err != nil {
			return nil, err
		}
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) == marker {
				closed = true
				break
			}
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if !closed {
			return nil, fmt.Errorf("%s: the block is never closed", b)
		}
		b.text = strings.Join(body, "\n") + "\n"
		out = append(out, b)
	}
	return out, nil
}

// annotate reads the comments on the lines right above a fence.
func (b *block) annotate(above []string) error {
	for j := len(above) - 1; j >= 0; j-- {
		m := annotation.FindStringSubmatch(above[j])
		if m == nil {
			return nil
		}
		note := m[1]
		switch {
		case strings.HasPrefix(note, "not run:"):
			b.notRun = strings.TrimSpace(strings.TrimPrefix(note, "not run:"))
			if b.notRun == "" {
				return fmt.Errorf("%s: <!-- not run: --> needs a reason", b)
			}
		case strings.HasPrefix(note, "exit "):
			for _, f := range strings.Fields(strings.TrimPrefix(note, "exit ")) {
				n, err := strconv.Atoi(f)
				if err != nil {
					return fmt.Errorf("%s: <!-- %s -->: want exit codes, e.g. <!-- exit 3 -->", b, note)
				}
				b.exit = append(b.exit, n)
			}
		default:
			return fmt.Errorf("%s: unknown annotation <!-- %s -->: want <!-- not run: REASON --> or <!-- exit N... -->", b, note)
		}
	}
	return nil
}

// command is one command of a console block, with the output it shows.
type command struct {
	text string
	want string
}

// commands splits a console block into "$ command" lines (a trailing
// backslash continues one) and the output printed under each.
func commands(b block) ([]command, error) {
	var out []command
	lines := strings.Split(strings.TrimSuffix(b.text, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if !strings.HasPrefix(line, "$ ") {
			if len(out) == 0 {
				return nil, fmt.Errorf("%s: a console block starts with a \"$ \" command", b)
			}
			out[len(out)-1].want += line + "\n"
			continue
		}
		cmd := strings.TrimPrefix(line, "$ ")
		for strings.HasSuffix(cmd, "\\") && i+1 < len(lines) {
			i++
			cmd += "\n" + lines[i]
		}
		out = append(out, command{text: cmd})
	}
	return out, nil
}

// Values that differ from one run to the next, replaced before outputs
// are compared; tables' column widths follow them, so runs of spaces are
// one space.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`), "<time>"}, // as tables print them; data keeps its times
	{regexp.MustCompile(`\b(\d+(\.\d+)?(ns|µs|us|ms|s|m|h))+\b`), "<duration>"},
	{regexp.MustCompile(`\b\d+ records/s\b`), "<n> records/s"},
	{regexp.MustCompile(`[ \t]+`), " "},
}

func normalize(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}
