package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/config"
	"github.com/carpipe/carpipe/engine"
)

func read(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestReadmeShort keeps the README an introduction: the rest is in docs/.
func TestReadmeShort(t *testing.T) {
	if n := strings.Count(read(t, filepath.Join(root, "README.md")), "\n"); n >= 300 {
		t.Errorf("README.md has %d lines; keep it under 300 and move details to docs/", n)
	}
}

// TestReadmeTestCommand: the README's test command is the one CI runs.
func TestReadmeTestCommand(t *testing.T) {
	var cmds []string
	for _, l := range strings.Split(read(t, filepath.Join(root, ".ci", "run")), "\n") {
		if strings.HasPrefix(l, "go test") {
			cmds = append(cmds, l)
		}
	}
	if len(cmds) != 1 {
		t.Fatalf(".ci/run: want one go test command, found %q", cmds)
	}
	bs, err := blocks(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.lang == "sh" && b.text == cmds[0]+"\n" {
			return
		}
	}
	t.Errorf("README.md has no sh block holding exactly %q, the test command .ci/run runs", cmds[0])
}

var (
	link    = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *#* *$`)
	slugOut = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// slug is the anchor GitHub gives a heading.
func slug(h string) string {
	return strings.ReplaceAll(slugOut.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
}

// anchors lists the headings' anchors of a Markdown file, outside code blocks.
func anchors(t *testing.T, file string) map[string]bool {
	out := map[string]bool{}
	inCode := false
	for _, l := range strings.Split(read(t, file), "\n") {
		if fence.MatchString(l) {
			inCode = !inCode
			continue
		}
		if m := heading.FindStringSubmatch(l); m != nil && !inCode {
			out[slug(m[1])] = true
		}
	}
	return out
}

// TestLinks: every relative link of the docs names a file that exists and,
// with a #fragment, a heading in it.
func TestLinks(t *testing.T) {
	for _, doc := range documents(t) {
		for _, m := range link.FindAllStringSubmatch(read(t, doc), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := doc
			if file != "" {
				path = filepath.Join(filepath.Dir(doc), filepath.FromSlash(file))
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %s: %v", doc, target, err)
					continue
				}
			}
			if frag != "" {
				if !strings.HasSuffix(path, ".md") {
					t.Errorf("%s: link %s: a fragment of a file that is not Markdown", doc, target)
				} else if !anchors(t, path)[frag] {
					t.Errorf("%s: link %s: %s has no heading with that anchor", doc, target, path)
				}
			}
		}
	}
}

// The commands the reference in operations.md covers.
var commandNames = []string{"run", "migrate", "validate", "check", "schemas", "runs", "files", "rejects",
	"reprocess", "plugins", "config schema", "version"}

// flagLine finds flags in a command's help, in the flag package's form
// ("  -name value") or pflag's ("  -n, --name value").
var flagLine = regexp.MustCompile(`(?m)^\s+(?:-([A-Za-z]), )?--?([A-Za-z][A-Za-z0-9-]*)`)

// TestFlagsDocumented: every flag of every command (read from the built
// binary's help) is in the command reference.
func TestFlagsDocumented(t *testing.T) {
	ref := read(t, "operations.md")
	carpipe := filepath.Join(bin(t), "carpipe")
	total := 0
	for _, name := range commandNames {
		cmd := exec.Command(carpipe, append(strings.Fields(name), "-h")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("carpipe %s -h: %v\n%s", name, err, out)
			continue
		}
		for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
			for _, f := range m[1:] {
				if f == "" || f == "h" || f == "help" {
					continue
				}
				total++
				dash := "--"
				if len(f) == 1 {
					dash = "-"
				}
				if !regexp.MustCompile(`(^|[^\w-])` + dash + regexp.QuoteMeta(f) + `([^\w-]|$)`).MatchString(ref) {
					t.Errorf("carpipe %s %s%s is not in docs/operations.md", name, dash, f)
				}
			}
		}
	}
	if total < 30 {
		t.Errorf("found only %d flags in the commands' help: has its format changed?", total)
	}
}

// TestInputKeysDocumented: the config reference names every key the
// engine reads from an input entry.
func TestInputKeysDocumented(t *testing.T) {
	ref := read(t, "config.md")
	for _, f := range config.Fields(engine.CommonInputKeys()) {
		if !strings.Contains(ref, "`"+f.Key+"`") {
			t.Errorf("input key %s is not in docs/config.md", f.Key)
		}
	}
}
