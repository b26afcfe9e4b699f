package main

// The CI examples in deploy/ci are what a user copies into a repository of
// data files. These tests read them as GitHub and GitLab would, check the
// install step, and run their validate commands with the real binary in a
// repository laid out as theirs: schemas/ and data/.

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type ghStep struct {
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	If   string            `yaml:"if"`
	Env  map[string]string `yaml:"env"`
	With map[string]any    `yaml:"with"`
}

type ghWorkflow struct {
	On   map[string]any    `yaml:"on"`
	Env  map[string]string `yaml:"env"`
	Jobs map[string]struct {
		RunsOn    string   `yaml:"runs-on"`
		Container string   `yaml:"container"`
		Steps     []ghStep `yaml:"steps"`
	} `yaml:"jobs"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if strings.Contains(string(data), "go run") {
		t.Errorf("%s uses go run: it needs carpipe's source and turns exit 3 into 1", path)
	}
}

// userRepo lays out a user's repository: carpipe's schemas, and data
// copied from a testdata folder (none: an empty data folder).
func userRepo(t *testing.T, data string) string {
	t.Helper()
	dir := t.TempDir()
	copyDir(t, "../../schemas", filepath.Join(dir, "schemas"))
	if data == "" {
		os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	} else {
		copyDir(t, data, filepath.Join(dir, "data"))
	}
	return dir
}

// shell runs a CI script as the runners do (bash, -e, pipefail) in dir,
// with the test's carpipe first on the PATH, and returns its exit code.
func shell(t *testing.T, dir, script string, env map[string]string) (int, string) {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	case err != nil:
		t.Fatal(err)
	}
	return 0, string(out)
}

// modulePath is go.mod's module path.
func modulePath(t *testing.T) string {
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^module (\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no module line")
	}
	return string(m[1])
}

// installRe is the one-step install of a pinned carpipe release.
func installRe(t *testing.T) *regexp.Regexp {
	return regexp.MustCompile(`go install (-tags nocloud )?"?` + regexp.QuoteMeta(modulePath(t)+"/cmd/carpipe") + `@\$\{?CARPIPE_VERSION\}?"?`)
}

var semver = regexp.MustCompile(`^v\d+\.\d+\.\d+$`)

// ciCases are the data a user's repository may hold, and the exit code
// the validate commands must end with.
var ciCases = []struct {
	name, data string
	code       int
}{
	{"valid", "../../testdata/validate/valid/files", exitOK},
	{"invalid", "../../testdata/validate/mixed/files", exitPartial},
	{"empty", "", exitPartial}, // --require-files
}

func TestGitHubWorkflowExample(t *testing.T) {
	const path = "../../deploy/ci/github-actions.yml"
	var wf ghWorkflow
	readYAML(t, path, &wf)
	if wf.On == nil || len(wf.Jobs) != 1 {
		t.Fatalf("%s: want on: and one job, got on %v, %d jobs", path, wf.On, len(wf.Jobs))
	}
	for _, ev := range []string{"push", "pull_request"} {
		if _, ok := wf.On[ev]; !ok {
			t.Errorf("the workflow does not run on %s", ev)
		}
	}
	if !semver.MatchString(wf.Env["CARPIPE_VERSION"]) {
		t.Errorf("CARPIPE_VERSION %q: pin a release (vX.Y.Z)", wf.Env["CARPIPE_VERSION"])
	}
	var steps []ghStep
	for _, j := range wf.Jobs {
		steps = j.Steps
	}
	var installs, validates, reports []ghStep
	var upload *ghStep
	for i, s := range steps {
		switch {
		case strings.Contains(s.Run, "go install"):
			installs = append(installs, s)
		case strings.Contains(s.Run, "--format junit"):
			reports = append(reports, s)
		case strings.Contains(s.Run, "carpipe validate"):
			validates = append(validates, s)
		case strings.HasPrefix(s.Uses, "actions/upload-artifact@"):
			upload = &steps[i]
		}
	}
	if len(installs) != 1 || !installRe(t).MatchString(installs[0].Run) {
		t.Errorf("want one step that installs the pinned release with %s: %v", installRe(t), installs)
	}
	if len(validates) != 1 || !strings.Contains(validates[0].Run, "--format github") {
		t.Fatalf("want one validate step with --format github: %v", validates)
	}
	// The report is written and kept even when validation failed.
	if len(reports) != 1 || reports[0].If != "always()" || upload == nil || upload.If != "always()" {
		t.Fatalf("want a JUnit step and an upload, both if: always(): %v, %v", reports, upload)
	}
	m := regexp.MustCompile(`> *(\S+)`).FindStringSubmatch(reports[0].Run)
	if m == nil || upload.With["path"] != m[1] {
		t.Fatalf("the upload keeps %v, the JUnit step writes %v", upload.With["path"], m)
	}
	report := m[1]

	for _, c := range ciCases {
		t.Run(c.name, func(t *testing.T) {
			dir := userRepo(t, c.data)
			env := map[string]string{"CI": "true", "GITHUB_ACTIONS": "true"}
			for k, v := range wf.Env {
				env[k] = v
			}
			for _, s := range []ghStep{validates[0], reports[0]} {
				if strings.Contains(s.Run, "${{") {
					t.Fatalf("step %q: an expression the test cannot evaluate", s.Name)
				}
				code, out := shell(t, dir, s.Run, env)
				if code != c.code {
					t.Fatalf("step %q: exit %d, want %d\n%s", s.Name, code, c.code, out)
				}
				if s.Name == validates[0].Name && c.code != exitOK && !strings.Contains(out, "::error ") {
					t.Errorf("step %q failed without an error annotation:\n%s", s.Name, out)
				}
			}
			doc, err := os.ReadFile(filepath.Join(dir, report))
			if err != nil {
				t.Fatal(err)
			}
			xsdValid(t, string(doc))
			if c.code != exitOK && strings.Contains(string(doc), `failures="0"`) {
				t.Errorf("the job fails and the report shows no failure:\n%s", doc)
			}
		})
	}
}

func TestGitLabExample(t *testing.T) {
	const path = "../../deploy/ci/gitlab-ci.yml"
	var doc struct {
		Variables map[string]string `yaml:"variables"`
		Job       struct {
			Image        string   `yaml:"image"`
			BeforeScript []string `yaml:"before_script"`
			Script       []string `yaml:"script"`
			Artifacts    struct {
				When    string `yaml:"when"`
				Reports struct {
					JUnit string `yaml:"junit"`
				} `yaml:"reports"`
			} `yaml:"artifacts"`
		} `yaml:"validate-data"`
	}
	readYAML(t, path, &doc)
	if !semver.MatchString(doc.Variables["CARPIPE_VERSION"]) {
		t.Errorf("CARPIPE_VERSION %q: pin a release (vX.Y.Z)", doc.Variables["CARPIPE_VERSION"])
	}
	if len(doc.Job.BeforeScript) == 0 || !installRe(t).MatchString(doc.Job.BeforeScript[0]) {
		t.Errorf("before_script does not install the pinned release: %v", doc.Job.BeforeScript)
	}
	if len(doc.Job.Script) == 0 || doc.Job.Artifacts.When != "always" || doc.Job.Artifacts.Reports.JUnit == "" {
		t.Fatalf("want a script and a JUnit report kept always: %+v", doc.Job)
	}
	for _, c := range ciCases {
		t.Run(c.name, func(t *testing.T) {
			dir := userRepo(t, c.data)
			// GitLab runs the script's lines in one shell and stops at the
			// first that fails.
			code, out := shell(t, dir, strings.Join(doc.Job.Script, "\n"), map[string]string{"CI": "true", "GITLAB_CI": "true"})
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s", code, c.code, out)
			}
			report, err := os.ReadFile(filepath.Join(dir, doc.Job.Artifacts.Reports.JUnit))
			if err != nil {
				t.Fatal(err)
			}
			xsdValid(t, string(report))
			if c.code != exitOK && strings.Contains(string(report), `failures="0"`) {
				t.Errorf("the job fails and the report shows no failure:\n%s", report)
			}
		})
	}
}

// TestOwnCI: carpipe's own workflow runs .ci/run on the Go of go.mod.
func TestOwnCI(t *testing.T) {
	var wf ghWorkflow
	readYAML(t, "../../.github/workflows/ci.yml", &wf)
	if _, ok := wf.On["pull_request"]; !ok {
		t.Error("ci.yml does not run on pull requests")
	}
	gomod, _ := os.ReadFile("../../go.mod")
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	runs := false
	for _, j := range wf.Jobs {
		if !strings.HasPrefix(j.Container, "golang:"+string(goVersion[1])) {
			t.Errorf("container %q: want golang:%s, go.mod's Go", j.Container, goVersion[1])
		}
		for _, s := range j.Steps {
			runs = runs || strings.TrimSpace(s.Run) == ".ci/run"
		}
	}
	if !runs {
		t.Error("ci.yml does not run .ci/run")
	}
}
