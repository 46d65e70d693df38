package ciconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// compositeAction is the schema of a composite action's action.yml
// (GitHub's metadata syntax for actions), as far as a composite action may
// use it: decoding with unknown fields refused catches misspelled keys.
type compositeAction struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Author      string            `yaml:"author"`
	Branding    map[string]string `yaml:"branding"`
	Inputs      map[string]struct {
		Description        string `yaml:"description"`
		Required           bool   `yaml:"required"`
		Default            string `yaml:"default"`
		DeprecationMessage string `yaml:"deprecationMessage"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			Name             string            `yaml:"name"`
			ID               string            `yaml:"id"`
			If               string            `yaml:"if"`
			Shell            string            `yaml:"shell"`
			Run              string            `yaml:"run"`
			Uses             string            `yaml:"uses"`
			With             map[string]string `yaml:"with"`
			Env              map[string]string `yaml:"env"`
			WorkingDirectory string            `yaml:"working-directory"`
			ContinueOnError  bool              `yaml:"continue-on-error"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dt, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return dt
}

func decodeStrict(t *testing.T, dt []byte, v any) error {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(dt))
	dec.KnownFields(true)
	return dec.Decode(v)
}

var (
	inputRef  = regexp.MustCompile(`\binputs\.([A-Za-z0-9_-]+)`)
	outputRef = regexp.MustCompile(`^\$\{\{ steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+) \}\}$`)
)

// TestGitHubAction decodes action.yml strictly as a composite action and
// checks what GitHub checks when it loads one, plus this project's rules:
// inputs reach scripts through env, never spliced into a run: script.
func TestGitHubAction(t *testing.T) {
	raw := repoFile(t, "deploy/ci/github/action.yml")
	var a compositeAction
	if err := decodeStrict(t, raw, &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if a.Name == "" || a.Description == "" || a.Runs.Using != "composite" || len(a.Runs.Steps) == 0 {
		t.Fatalf("action.yml: name %q description %q using %q, %d steps", a.Name, a.Description, a.Runs.Using, len(a.Runs.Steps))
	}
	for _, in := range []string{"specs", "server", "buildkit-addr", "jobs"} {
		if _, ok := a.Inputs[in]; !ok {
			t.Errorf("no input %q", in)
		}
	}
	if !a.Inputs["specs"].Required {
		t.Error("specs is not required")
	}
	for name, in := range a.Inputs {
		if in.Description == "" {
			t.Errorf("input %s has no description", name)
		}
	}
	ids := map[string]bool{}
	for i, s := range a.Runs.Steps {
		if (s.Run == "") == (s.Uses == "") {
			t.Errorf("step %d: exactly one of run and uses", i)
		}
		if s.Run != "" && s.Shell == "" {
			t.Errorf("step %d: a composite run step needs shell", i)
		}
		if s.Run != "" && strings.Contains(s.Run, "${{") {
			t.Errorf("step %d: expression in run: (script injection); pass it through env", i)
		}
		if s.ID != "" {
			ids[s.ID] = true
		}
		for _, text := range append([]string{s.If}, values(s.Env)...) {
			for _, m := range inputRef.FindAllStringSubmatch(text, -1) {
				if _, ok := a.Inputs[m[1]]; !ok {
					t.Errorf("step %d uses undeclared input %q", i, m[1])
				}
			}
		}
	}
	for _, out := range []string{"results", "image-args"} {
		o, ok := a.Outputs[out]
		if !ok {
			t.Errorf("no output %q", out)
			continue
		}
		m := outputRef.FindStringSubmatch(o.Value)
		if m == nil || !ids[m[1]] || o.Description == "" {
			t.Errorf("output %s = %q: want a described ${{ steps.ID.outputs.X }} of a step with that id", out, o.Value)
		}
	}
	last := a.Runs.Steps[len(a.Runs.Steps)-1]
	if !strings.Contains(last.Run, "$GITHUB_ACTION_PATH/prebuild.sh") {
		t.Errorf("the build step does not run prebuild.sh: %q", last.Run)
	}

	// Misspelled keys are refused: the schema check has teeth.
	for _, bad := range []string{
		strings.Replace(string(raw), "    description: How many", "    descripton: How many", 1),
		strings.Replace(string(raw), "  using: composite", "  using: composite\n  main: x.js", 1),
		strings.Replace(string(raw), "      shell: bash\n      env:\n        ISPEC_SPECS", "      shel: bash\n      env:\n        ISPEC_SPECS", 1),
	} {
		if bad == string(raw) {
			t.Fatal("mutation did not apply")
		}
		if err := decodeStrict(t, []byte(bad), &compositeAction{}); err == nil {
			t.Errorf("a misspelled key was accepted")
		}
	}
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestGitHubExampleWorkflow: the example parses, logs in to the registry
// before the action and hands the image arguments to pyflyte register.
func TestGitHubExampleWorkflow(t *testing.T) {
	var wf struct {
		Name string
		On   map[string]any
		Jobs map[string]struct {
			RunsOn string `yaml:"runs-on"`
			Steps  []map[string]any
		}
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/ci/github/example-workflow.yml"), &wf); err != nil {
		t.Fatal(err)
	}
	for name, job := range wf.Jobs {
		var uses []string
		register := ""
		for _, s := range job.Steps {
			if u, ok := s["uses"].(string); ok {
				uses = append(uses, strings.SplitN(u, "@", 2)[0])
			}
			if r, ok := s["run"].(string); ok && strings.Contains(r, "pyflyte register") {
				register = fmt.Sprint(s["env"])
			}
		}
		login, action := slices.Index(uses, "docker/login-action"), slices.Index(uses, "ispec-dev/ispec/deploy/ci/github")
		if login < 0 || action < 0 || login > action {
			t.Errorf("job %s: uses %v; want docker/login-action before the ispec action", name, uses)
		}
		if !strings.Contains(register, "steps.images.outputs.image-args") {
			t.Errorf("job %s: pyflyte register does not get the image arguments (env %s)", name, register)
		}
	}
}

// gitlabJob is what the template's jobs may hold.
type gitlabJob struct {
	Stage     string            `yaml:"stage"`
	Image     string            `yaml:"image"`
	Extends   string            `yaml:"extends"`
	Needs     []string          `yaml:"needs"`
	Variables map[string]string `yaml:"variables"`
	Cache     struct {
		Key   string   `yaml:"key"`
		Paths []string `yaml:"paths"`
	} `yaml:"cache"`
	BeforeScript []string `yaml:"before_script"`
	Script       []string `yaml:"script"`
	Artifacts    struct {
		When    string            `yaml:"when"`
		Paths   []string          `yaml:"paths"`
		Reports map[string]string `yaml:"reports"`
	} `yaml:"artifacts"`
}

func TestGitLabTemplate(t *testing.T) {
	var tmpl map[string]gitlabJob
	if err := decodeStrict(t, repoFile(t, "deploy/ci/gitlab/ispec.gitlab-ci.yml"), &tmpl); err != nil {
		t.Fatalf("template: %v", err)
	}
	job, ok := tmpl[".ispec-prebuild"]
	if !ok || len(tmpl) != 1 {
		t.Fatalf("template jobs %v, want the one hidden job .ispec-prebuild", keys(tmpl))
	}
	if job.Image == "" || len(job.Script) == 0 || job.Stage == "" || job.Variables["ISPEC_SPECS"] == "" {
		t.Errorf("job %+v: want image, stage, script and ISPEC_SPECS", job)
	}
	if job.Artifacts.When != "always" || !slices.Contains(job.Artifacts.Paths, "ispec-results.json") || !slices.Contains(job.Artifacts.Paths, "ispec-image-args.txt") {
		t.Errorf("artifacts %+v", job.Artifacts)
	}
	// Image arguments travel as a file: a dotenv variable is limited to
	// 5 KiB, which 30-odd images exceed.
	if len(job.Artifacts.Reports) != 0 {
		t.Errorf("artifacts reports %v: the image arguments go in ispec-image-args.txt", job.Artifacts.Reports)
	}
	if !strings.HasSuffix(job.Variables["ISPEC_SPECS"], ".ispec.yaml") {
		t.Errorf("default ISPEC_SPECS %q: want spec files only (*.ispec.yaml), not every YAML file", job.Variables["ISPEC_SPECS"])
	}
	if strings.Contains(strings.Join(job.BeforeScript, "\n"), "go install") {
		t.Errorf("the template compiles ispec in every job: download the release")
	}
	var ex struct {
		Include []map[string]string  `yaml:"include"`
		Stages  []string             `yaml:"stages"`
		Jobs    map[string]gitlabJob `yaml:",inline"`
	}
	if err := decodeStrict(t, repoFile(t, "deploy/ci/gitlab/example.gitlab-ci.yml"), &ex); err != nil {
		t.Fatalf("example: %v", err)
	}
	if len(ex.Include) != 1 || !strings.HasSuffix(ex.Include[0]["remote"], "deploy/ci/gitlab/ispec.gitlab-ci.yml") {
		t.Errorf("example includes %v", ex.Include)
	}
	if ex.Jobs["images"].Extends != ".ispec-prebuild" || !slices.Contains(ex.Jobs["register"].Needs, "images") {
		t.Errorf("example jobs %+v", ex.Jobs)
	}
	if !strings.Contains(strings.Join(ex.Jobs["register"].Script, "\n"), "ispec-image-args.txt") {
		t.Error("the example's register job does not read ispec-image-args.txt")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ciEnv builds ispec and returns the environment a CI job would give
// prebuild.sh or the GitLab script on the test environment.
func ciEnv(t *testing.T) (env *testenv.Env, bin, root string) {
	t.Helper()
	env = testenv.Load(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(t.TempDir(), "ispec")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ispec-dev/ispec/cmd/ispec").CombinedOutput(); err != nil {
		t.Fatalf("building ispec: %v\n%s", err, out)
	}
	return env, bin, root
}

// specsFolder writes a folder of specs under a fresh namespace: two
// absent, optionally one invalid.
func specsFolder(t *testing.T, env *testenv.Env, invalid bool) string {
	t.Helper()
	dir := t.TempDir()
	ns := fmt.Sprintf("%s/ci-%d", env.Registry, time.Now().UnixNano())
	files := map[string]string{
		"images/a/app.yaml":   fmt.Sprintf("name: app\nregistry: %s\nbase_image: %s\nenv: {A: \"1\"}\n", ns, env.BaseBusybox),
		"images/b/train.yaml": fmt.Sprintf("name: train\nregistry: %s\nbase_image: %s\ncommands: [\"echo t > /t.txt\"]\n", ns, env.BaseBusybox),
	}
	if invalid {
		files["images/b/bad.yaml"] = fmt.Sprintf("name: bad\nregistry: %s\npackges: [x]\n", ns)
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// baseEnv is a clean CI-like environment: no user config or credentials.
func baseEnv(t *testing.T, env *testenv.Env, bin string) []string {
	return append(os.Environ(),
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"BUILDKIT_HOST="+env.BuildkitHost,
		"ISPEC_CACHE_DIR="+t.TempDir(),
		"XDG_CONFIG_HOME="+t.TempDir(),
		"DOCKER_CONFIG="+t.TempDir(),
		"ISPEC_REGISTRY=", "ISPEC_SERVER=", "GITHUB_STEP_SUMMARY=", "GITHUB_OUTPUT=",
	)
}

// TestGitHubActionScript runs the action's script body, prebuild.sh, the
// way the action's step runs it, against the test environment, with
// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY as temporary files.
func TestGitHubActionScript(t *testing.T) {
	env, bin, root := ciEnv(t)
	for _, tc := range []struct {
		name    string
		invalid bool
		code    int
	}{{"all valid", false, 0}, {"an invalid spec among them", true, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := specsFolder(t, env, tc.invalid)
			runner := t.TempDir()
			output, summary := filepath.Join(runner, "output"), filepath.Join(runner, "summary.md")
			cmd := exec.Command("bash", filepath.Join(root, "deploy/ci/github/prebuild.sh"))
			cmd.Dir = dir
			// The action's env block, with an empty server and registry as
			// when those inputs are not given.
			cmd.Env = append(baseEnv(t, env, bin),
				"GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+summary, "RUNNER_TEMP="+runner,
				"ISPEC_SPECS=images/**/*.yaml\n  images/a/*.yaml", "ISPEC_JOBS=2",
				"ISPEC_SERVER=", "ISPEC_TOKEN=", "ISPEC_BUILDKIT_ADDR=", "ISPEC_REGISTRY=", "ISPEC_RESULTS=",
			)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, stderr.String())
			}
			outs := parseOutputs(t, output)
			if outs["exit-code"] != fmt.Sprint(tc.code) || outs["results"] != filepath.Join(runner, "ispec-results.json") {
				t.Errorf("outputs %v", outs)
			}
			var doc struct {
				Results []struct{ Spec, Name, Ref, Digest, Outcome string }
				Summary struct{ Specs, Built, Failed int }
			}
			dt, err := os.ReadFile(outs["results"])
			if err != nil || json.Unmarshal(dt, &doc) != nil {
				t.Fatalf("results: %v\n%s", err, dt)
			}
			wantFailed := 0
			if tc.invalid {
				wantFailed = 1
			}
			if doc.Summary.Specs != 2+wantFailed || doc.Summary.Built != 2 || doc.Summary.Failed != wantFailed {
				t.Errorf("summary %+v", doc.Summary)
			}
			var want []string
			for _, r := range doc.Results {
				if r.Outcome != "failed" {
					want = append(want, fmt.Sprintf("--image %s=%s@%s", r.Name, r.Ref, r.Digest))
				}
			}
			if outs["image-args"] != strings.Join(want, " ") || len(want) != 2 {
				t.Errorf("image-args %q, want %q", outs["image-args"], strings.Join(want, " "))
			}
			var meta struct{ Results []struct{ Ref string } }
			if err := json.Unmarshal([]byte(outs["metadata"]), &meta); err != nil || len(meta.Results) != len(doc.Results) {
				t.Errorf("metadata output %q: %v", outs["metadata"], err)
			}
			if outs["digest"] != "" || outs["imageid"] != "" {
				t.Errorf("digest %q imageid %q with several images, want both empty", outs["digest"], outs["imageid"])
			}
			if lines, _ := os.ReadFile(outs["image-args-file"]); strings.Join(strings.Fields(string(lines)), " ") != outs["image-args"] {
				t.Errorf("image-args-file holds %q, want %q", lines, outs["image-args"])
			}
			md, _ := os.ReadFile(summary)
			if !strings.Contains(string(md), "### ispec build") {
				t.Errorf("step summary %q", md)
			}
		})
	}
}

// parseOutputs reads a GITHUB_OUTPUT file: NAME=VALUE lines and
// multi-line NAME<<DELIMITER ... DELIMITER blocks.
func parseOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	dt, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lines := strings.Split(strings.TrimSpace(string(dt)), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if k, delim, ok := strings.Cut(l, "<<"); ok && !strings.Contains(k, "=") {
			var body []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				body = append(body, lines[i])
			}
			if i == len(lines) {
				t.Errorf("output %s: no closing %s", k, delim)
			}
			out[k] = strings.Join(body, "\n")
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Errorf("output line %q", l)
		}
		out[k] = v
	}
	return out
}

// TestGitLabTemplateScript runs the template's script (not its
// before_script, which installs ispec and writes credentials) with sh, as
// a GitLab runner would, against the test environment.
func TestGitLabTemplateScript(t *testing.T) {
	env, bin, _ := ciEnv(t)
	var tmpl map[string]gitlabJob
	if err := yaml.Unmarshal(repoFile(t, "deploy/ci/gitlab/ispec.gitlab-ci.yml"), &tmpl); err != nil {
		t.Fatal(err)
	}
	job := tmpl[".ispec-prebuild"]
	dir := specsFolder(t, env, false)
	cmd := exec.Command("sh", "-c", strings.Join(job.Script, "\n"))
	cmd.Dir = dir
	cmd.Env = append(baseEnv(t, env, bin), "ISPEC_SPECS=images/**/*.yaml", "ISPEC_JOBS="+job.Variables["ISPEC_JOBS"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	args, err := os.ReadFile(filepath.Join(dir, "ispec-image-args.txt"))
	if err != nil || !regexp.MustCompile(`^--image app=\S+@sha256:[0-9a-f]{64}\n--image train=\S+@sha256:[0-9a-f]{64}\n$`).Match(args) {
		t.Errorf("ispec-image-args.txt %q (%v)", args, err)
	}
	for _, p := range job.Artifacts.Paths {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("artifact %s: %v", p, err)
		}
	}
}
