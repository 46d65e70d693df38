package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"

	"github.com/ispec-dev/ispec/spec"
)

// LabelPythonResolved is the label of an image whose Python requirements
// float: what the build got, every distribution of its virtual
// environment as name==version (PEP 503 names), sorted, separated by
// spaces. An image without floating requirements has no such label.
const LabelPythonResolved = "dev.ispec.python-resolved"

// InstalledStepName is the name of the step that lists the Python
// distributions a floating build installed.
const InstalledStepName = "[ispec] list the installed Python distributions"

// installedDir is where that step writes installedFile; the folder is a
// mount of its own, never part of the image.
const installedDir = "/run/ispec/installed"

// installedFile is the JSON list the step writes: ["name==version", ...].
const installedFile = "installed.json"

// installedScript writes the distributions the interpreter sees
// (importlib.metadata, the first of each name on sys.path, as import
// does) to the file named by its first argument as a sorted JSON list of
// name==version; a Python before 3.8 writes an empty list. It is a fixed
// program: nothing of the spec reaches it.
const installedScript = `import json, re, sys
seen = {}
try:
    import importlib.metadata as md
except ImportError:
    md = None
    print("ispec: this Python has no importlib.metadata (3.8 or later): the installed distributions are not recorded", file=sys.stderr)
for d in (md.distributions() if md else []):
    n = d.metadata["Name"]
    if n and d.version:
        seen.setdefault(re.sub(r"[-_.]+", "-", n).lower(), d.version)
with open(sys.argv[1], "w") as f:
    json.dump(sorted(k + "==" + v for k, v in seen.items()), f)
`

// RecordsInstalled reports whether a build of img lists the Python
// distributions it installed: when it has a virtual environment and some
// of its Python requirements (or its parents') float.
func RecordsInstalled(img *spec.Image) bool {
	return needsPython(img) && len(img.Floating()) > 0
}

// InstalledGraph returns the state whose root holds installedFile: the
// virtual environment's interpreter, run on the finished filesystem st
// (as root, isolated from the image's PYTHON* variables), lists what is
// installed. The image is st itself; this is a branch beside it. It does
// no I/O.
func InstalledGraph(st llb.State) llb.State {
	run := st.Run(
		llb.Args([]string{VenvDir + "/bin/python", "-I", "-c", installedScript, path.Join(installedDir, installedFile)}),
		llb.User("0:0"),
		llb.Dir("/"),
		reproducibleEnv(),
		llb.AddEnv("PYTHONDONTWRITEBYTECODE", "1"),
		llb.WithCustomName(InstalledStepName),
	)
	return run.AddMount(installedDir, llb.Scratch())
}

// ParseInstalled reads the list InstalledGraph writes: name==version
// entries, checked and sorted.
func ParseInstalled(data []byte) ([]string, error) {
	var out []string
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("reading the installed Python distributions: %w", err)
	}
	for _, d := range out {
		n, v, ok := strings.Cut(d, "==")
		if !ok || n == "" || v == "" || strings.ContainsAny(d, " \t\n") {
			return nil, fmt.Errorf("reading the installed Python distributions: %q is not name==version", d)
		}
	}
	sort.Strings(out)
	return out, nil
}

// readInstalled solves InstalledGraph on st and reads its list back. It
// imports what the image's solve imports: the image's graph is evaluated
// by whichever solve first needs it, this one included.
func readInstalled(ctx context.Context, c gateway.Client, st llb.State, mopts []llb.ConstraintsOpt, imports []gateway.CacheOptionsEntry) ([]string, error) {
	def, err := InstalledGraph(st).Marshal(ctx, mopts...)
	if err != nil {
		return nil, fmt.Errorf("marshalling graph: %w", err)
	}
	res, err := c.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), CacheImports: imports})
	if err != nil {
		return nil, err
	}
	ref, err := res.SingleRef()
	if err != nil {
		return nil, err
	}
	data, err := ref.ReadFile(ctx, gateway.ReadRequest{Filename: installedFile})
	if err != nil {
		return nil, fmt.Errorf("reading the installed Python distributions: %w", err)
	}
	return ParseInstalled(data)
}

// installedSets are what each platform of one build installed, by
// platform (platforms.Format), set by its concurrent solves.
type installedSets struct {
	mu   sync.Mutex
	sets map[string][]string
}

func (s *installedSets) set(plat string, dists []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sets == nil {
		s.sets = map[string][]string{}
	}
	s.sets[plat] = dists
}

// all returns the sets, nil when none was recorded.
func (s *installedSets) all() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.sets)
}
