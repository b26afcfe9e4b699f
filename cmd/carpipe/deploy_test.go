package main

// Docker and a cluster are not available to the tests: they check that the
// files in deploy/ parse and agree with the code (flags, variables, paths,
// ports, the schemas' ConfigMap), and that the binary builds static as the
// Dockerfile builds it.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/carpipe/carpipe/schemas"
)

// manifests reads every YAML document under deploy/k8s, by kind.
func manifests(t *testing.T) map[string]map[string]any {
	t.Helper()
	paths, _ := filepath.Glob("../../deploy/k8s/*.yaml")
	if len(paths) == 0 {
		t.Fatal("no manifests in deploy/k8s")
	}
	out := map[string]map[string]any{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			kind, _ := doc["kind"].(string)
			if kind == "" || doc["apiVersion"] == nil || dig(doc, "metadata", "name") == nil {
				t.Fatalf("%s: a document without apiVersion, kind or metadata.name", p)
			}
			out[kind] = doc
		}
	}
	return out
}

// dig walks maps and lists ("0" indexes a list).
func dig(v any, path ...string) any {
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// runArgs checks a container's args with run's own flag set.
func runArgs(t *testing.T, args []string) *runOpts {
	t.Helper()
	if len(args) == 0 || args[0] != "run" {
		t.Fatalf("args %v: want run first", args)
	}
	c := &cli{stderr: io.Discard, mask: &masker{}}
	cmd, o := c.runCommand()
	c.globalFlags(cmd.PersistentFlags())
	if err := cmd.ParseFlags(args[1:]); err != nil {
		t.Fatalf("args %v: %v", args, err)
	}
	if err := o.check(c, cmd); err != nil {
		t.Fatalf("args %v: %v", args, err)
	}
	return o
}

// containerEnv is what a container's environment provides: env values and
// the keys of the secrets it reads whole.
func containerEnv(t *testing.T, ms map[string]map[string]any, ctr any) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range dig(ctr, "env").([]any) {
		env[fmt.Sprint(dig(e, "name"))] = fmt.Sprint(dig(e, "value"))
	}
	for _, from := range dig(ctr, "envFrom").([]any) {
		name := dig(from, "secretRef", "name")
		secret := ms["Secret"]
		if name == nil || dig(secret, "metadata", "name") != name {
			t.Fatalf("envFrom %v: no such secret in deploy/k8s", from)
		}
		for k := range dig(secret, "stringData").(map[string]any) {
			env[k] = "(secret)"
		}
	}
	return env
}

// required are the variables config/pipeline.yaml needs without default.
func required(t *testing.T) []string {
	data, err := os.ReadFile("../../config/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)(:-[^}]*)?\}`).FindAllStringSubmatch(string(data), -1) {
		if m[2] == "" {
			out = append(out, m[1])
		}
	}
	if len(out) < 4 {
		t.Fatalf("required variables %v: the pattern missed some", out)
	}
	return out
}

func checkPod(t *testing.T, ms map[string]map[string]any, pod any) (ctr any, o *runOpts) {
	t.Helper()
	ctr = dig(pod, "containers", "0")
	o = runArgs(t, strs(dig(ctr, "args")))
	env := containerEnv(t, ms, ctr)
	for _, v := range required(t) {
		if env[v] == "" {
			t.Errorf("the pipeline needs %s; the pod does not set it", v)
		}
	}
	mount := dig(ctr, "volumeMounts", "0", "mountPath")
	if env["FILE_DIRECTORY"] != mount {
		t.Errorf("FILE_DIRECTORY %q but the inbox is mounted at %v", env["FILE_DIRECTORY"], mount)
	}
	claim := dig(pod, "volumes", "0", "persistentVolumeClaim", "claimName")
	if dig(ms["PersistentVolumeClaim"], "metadata", "name") != claim ||
		!slices.Contains(strs(dig(ms["PersistentVolumeClaim"], "spec", "accessModes")), "ReadWriteMany") {
		t.Errorf("the inbox claim %v is not a ReadWriteMany PVC of deploy/k8s", claim)
	}
	checkSchemasMount(t, pod, ctr)
	if dig(pod, "securityContext", "runAsNonRoot") != true || dig(pod, "securityContext", "runAsUser") != 65532 {
		t.Error("the pod may run as root")
	}
	if g, ok := dig(pod, "terminationGracePeriodSeconds").(int); !ok || float64(g) <= o.grace.Seconds() {
		t.Errorf("terminationGracePeriodSeconds %v is not above --grace %v", dig(pod, "terminationGracePeriodSeconds"), o.grace)
	}
	return ctr, o
}

// checkSchemasMount: the schemas come from the carpipe-schemas ConfigMap,
// mounted read-only where the image's config looks for them, and the
// manifests say how to create it.
func checkSchemasMount(t *testing.T, pod, ctr any) {
	t.Helper()
	var mount, volume any
	for _, m := range dig(ctr, "volumeMounts").([]any) {
		if dig(m, "mountPath") == "/etc/carpipe/schemas" {
			mount = m
		}
	}
	for _, v := range dig(pod, "volumes").([]any) {
		if mount != nil && dig(v, "name") == dig(mount, "name") {
			volume = v
		}
	}
	if mount == nil || dig(mount, "readOnly") != true || dig(volume, "configMap", "name") != "carpipe-schemas" {
		t.Errorf("the schemas are not the carpipe-schemas ConfigMap mounted read-only at /etc/carpipe/schemas: mount %v, volume %v", mount, volume)
	}
}

func TestDeploySchemasDocumented(t *testing.T) {
	for _, f := range []string{"deployment.yaml", "cronjob.yaml"} {
		data, err := os.ReadFile(filepath.Join("../../deploy/k8s", f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "kubectl create configmap carpipe-schemas --from-file=schemas/") {
			t.Errorf("%s does not say how to create the carpipe-schemas ConfigMap", f)
		}
	}
}

func TestDeployCronJob(t *testing.T) {
	ms := manifests(t)
	cj := ms["CronJob"]
	job := dig(cj, "spec", "jobTemplate", "spec")
	if p, _ := dig(job, "parallelism").(int); p < 2 {
		t.Errorf("parallelism %v: the point is several pods", dig(job, "parallelism"))
	}
	if dig(job, "completionMode") != "Indexed" {
		t.Error("not an Indexed Job: the pushed metrics of parallel pods would overwrite each other")
	}
	pod := dig(job, "template", "spec")
	if dig(pod, "restartPolicy") != "Never" {
		t.Error("podFailurePolicy needs restartPolicy Never")
	}
	_, o := checkPod(t, ms, pod)
	if o.watch || o.pushgateway == "" {
		t.Errorf("the CronJob should run one-shot and push its metrics: watch %v, pushgateway %q", o.watch, o.pushgateway)
	}
	if v := strs(dig(job, "podFailurePolicy", "rules", "0", "onExitCodes", "values")); !slices.Equal(v, []string{fmt.Sprint(exitUsage)}) {
		t.Errorf("podFailurePolicy fails the job on exit %v, want the usage code only", v)
	}
}

func TestDeployDeployment(t *testing.T) {
	ms := manifests(t)
	d := ms["Deployment"]
	pod := dig(d, "spec", "template", "spec")
	ctr, o := checkPod(t, ms, pod)
	if !o.watch || o.metricsAddr == "" {
		t.Fatalf("the Deployment should watch and serve metrics: %+v", o)
	}
	port := dig(ctr, "ports", "0")
	if dig(port, "name") != "metrics" || ":"+fmt.Sprint(dig(port, "containerPort")) != o.metricsAddr[strings.LastIndex(o.metricsAddr, ":"):] {
		t.Errorf("port %v does not match --metrics-addr %s", port, o.metricsAddr)
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		if dig(ctr, probe, "httpGet", "path") != "/healthz" || dig(ctr, probe, "httpGet", "port") != "metrics" {
			t.Errorf("%s is not on /healthz of the metrics port", probe)
		}
	}
	if r, _ := dig(d, "spec", "replicas").(int); r < 2 {
		t.Errorf("replicas %v", dig(d, "spec", "replicas"))
	}
	if dig(d, "spec", "template", "metadata", "annotations", "prometheus.io/port") != fmt.Sprint(dig(port, "containerPort")) {
		t.Error("the scrape annotation does not name the metrics port")
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, COPY, RUN...
	args string
	line int
}

// dockerfile parses a Dockerfile into its stages' instructions.
func dockerfile(t *testing.T, path string) (stages [][]instruction) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cur string
	start := 0
	for i, l := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur == "" {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		in := instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " "), start}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("%s:%d: %s before FROM", path, start, in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
		cur = ""
	}
	return stages
}

func find(stage []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// TestDockerfile checks the image without building it (Docker is not
// available to the tests, and a second build of the binary would double
// the suite's time): the build stage's Go matches go.mod and builds
// without cgo, and the final stage copies the binary, the *.schema.json
// files and the configs, nothing else.
func TestDockerfile(t *testing.T) {
	stages := dockerfile(t, "../../deploy/Dockerfile")
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a build stage and the final one", len(stages))
	}
	build, final := stages[0], stages[1]

	// The build stage: Go of go.mod's version, a static build of ./cmd/carpipe.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if want := "golang:" + string(goVersion[1]) + " AS build"; build[0].args != want {
		t.Errorf("build stage FROM %s, want %s (go.mod's Go)", build[0].args, want)
	}
	var goBuild string
	for _, in := range find(build, "RUN") {
		if strings.Contains(in.args, "go build") {
			goBuild = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux", "-trimpath", "-X main.version=${VERSION}", "-o /out/carpipe ./cmd/carpipe"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("the build's RUN lacks %q: %s", want, goBuild)
		}
	}
	// CGO_ENABLED=0 must build: every package the binary needs compiles
	// without cgo. go list answers without compiling anything.
	cmd := exec.Command(goTool(), "list", "-deps", "-e", "-f", "{{with .Error}}{{.}}{{end}}{{with .DepsErrors}}{{.}}{{end}}", "./cmd/carpipe")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("./cmd/carpipe does not build with CGO_ENABLED=0: %v\n%s", err, out)
	}

	// The final stage: distroless static as non-root, and only these files.
	if !strings.HasPrefix(final[0].args, "gcr.io/distroless/static") || !strings.HasSuffix(final[0].args, ":nonroot") {
		t.Errorf("final stage FROM %s: want distroless/static, nonroot", final[0].args)
	}
	if u := find(final, "USER"); len(u) != 1 || u[0].args != "65532:65532" {
		t.Errorf("USER %v, want 65532:65532", u)
	}
	if e := find(final, "ENTRYPOINT"); len(e) != 1 || e[0].args != `["/usr/local/bin/carpipe"]` {
		t.Errorf("ENTRYPOINT %v", e)
	}
	image := map[string]string{} // path in the image -> path in the repository
	for _, in := range find(final, "COPY") {
		f := strings.Fields(in.args)
		if f[0] != "--from=build" {
			t.Errorf("line %d: COPY %s: the final stage copies from the build stage only", in.line, in.args)
			continue
		}
		srcs, dst := f[1:len(f)-1], f[len(f)-1]
		for _, src := range srcs {
			if src == "/out/carpipe" {
				image[dst] = "(binary)"
				continue
			}
			rel, ok := strings.CutPrefix(src, "/src/")
			if !ok {
				t.Errorf("line %d: copies %s, outside the build's /out and /src", in.line, src)
				continue
			}
			matches, _ := filepath.Glob(filepath.Join("../..", rel))
			if len(matches) == 0 {
				t.Errorf("line %d: %s matches nothing in the repository", in.line, src)
			}
			for _, m := range matches {
				if st, err := os.Stat(m); err != nil || st.IsDir() {
					t.Errorf("line %d: %s copies the folder %s whole", in.line, src, m)
					continue
				}
				r, _ := filepath.Rel("../..", m)
				image[strings.TrimSuffix(dst, "/")+"/"+filepath.Base(m)] = filepath.ToSlash(r)
			}
		}
	}
	schemaFiles, _ := filepath.Glob("../../schemas/*.schema.json")
	want := map[string]string{
		"/usr/local/bin/carpipe":            "(binary)",
		"/etc/carpipe/config/pipeline.yaml": "config/pipeline.yaml",
		"/etc/carpipe/config/demo.yaml":     "config/demo.yaml",
	}
	for _, p := range schemaFiles {
		want["/etc/carpipe/schemas/"+filepath.Base(p)] = "schemas/" + filepath.Base(p)
	}
	if len(schemaFiles) == 0 || !maps.Equal(image, want) {
		t.Errorf("the image holds\n%v\nwant\n%v", image, want)
	}

	// The default config finds the schemas where the image (and the
	// Kubernetes ConfigMap) puts them.
	cfg, _ := os.ReadFile("../../config/pipeline.yaml")
	if !strings.Contains(string(cfg), "schemas: ../schemas") {
		t.Error("config/pipeline.yaml moved its schemas: fix the Dockerfile's layout and the manifests' mounts")
	}
	env := find(final, "ENV")
	if len(env) != 1 || !strings.Contains(env[0].args, "CARPIPE_CONFIG=/etc/carpipe/config/pipeline.yaml") {
		t.Errorf("ENV %v: CARPIPE_CONFIG should name the image's pipeline.yaml", env)
	}
}

// goTool is the go command the tests run under.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// TestSchemasFromConfigMap loads the schemas from a folder laid out as the
// kubelet mounts a ConfigMap: each key a symbolic link through ..data to
// a hidden, timestamped folder.
func TestSchemasFromConfigMap(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "..2024_01_01_00_00_00.000000001")
	copyDir(t, "../../schemas", ts)
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(ts)
	for _, e := range entries {
		os.Symlink(filepath.Join("..data", e.Name()), filepath.Join(dir, e.Name()))
	}
	set, err := schemas.Load(dir, schemas.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, typ := range set.Types {
		got = append(got, typ.Name())
	}
	if want := []string{"objects_detection", "vehicles_status"}; !slices.Equal(got, want) {
		t.Fatalf("types %v from a ConfigMap mount, want %v", got, want)
	}
}
