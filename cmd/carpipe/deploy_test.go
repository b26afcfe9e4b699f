package main

// Docker and a cluster are not available to the tests: they check that the
// files in deploy/ parse and agree with the code (flags, variables, paths,
// ports), and that the binary builds static as the Dockerfile builds it.

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
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
	if dig(pod, "securityContext", "runAsNonRoot") != true || dig(pod, "securityContext", "runAsUser") != 65532 {
		t.Error("the pod may run as root")
	}
	if g, ok := dig(pod, "terminationGracePeriodSeconds").(int); !ok || float64(g) <= o.grace.Seconds() {
		t.Errorf("terminationGracePeriodSeconds %v is not above --grace %v", dig(pod, "terminationGracePeriodSeconds"), o.grace)
	}
	return ctr, o
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

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	if strings.Count(df, "\nFROM ") < 2 {
		t.Error("not a multi-stage build")
	}
	for _, want := range []string{
		"CGO_ENABLED=0", "go build", "./cmd/carpipe",
		"USER 65532:65532", ":nonroot",
		"COPY --from=build /src/schemas/ /etc/carpipe/schemas/",
		"/src/config/pipeline.yaml", "CARPIPE_CONFIG=/etc/carpipe/config/pipeline.yaml",
		`ENTRYPOINT ["/usr/local/bin/carpipe"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// pipeline.yaml's schemas folder, relative to it, is where the image
	// puts the schemas.
	cfg, _ := os.ReadFile("../../config/pipeline.yaml")
	if !strings.Contains(string(cfg), "schemas: ../schemas") {
		t.Error("config/pipeline.yaml moved its schemas: fix the Dockerfile's layout")
	}
	// The binary the Dockerfile builds (CGO_ENABLED=0) is static: it has
	// no program interpreter, so it runs on distroless/static.
	f, err := elf.Open(binary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked")
		}
	}
}
