package builder

import (
	"fmt"
	"path"

	"github.com/moby/buildkit/client/llb"

	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// lockDir is where the pinned requirements of a Python lock are mounted
// while pip installs them.
const lockDir = "/run/ispec/pylock"

// lockStep installs exactly the distributions a Python lock pins for one
// platform: pip reads a requirements file the graph itself holds (each
// pin by URL and sha256, or by version and its recorded hashes) with
// --no-deps, so that it resolves nothing, and --require-hashes, so that an
// artifact whose bytes changed on the index fails the step.
func lockStep(lock *spec.PythonLock, pins []pylock.Pin, pip pipArgs, plat string, secrets []spec.SecretMount, netrc bool) Step {
	name := fmt.Sprintf("[ispec] pip install --no-deps --require-hashes (%s: %d pinned)", lock.Format, len(pins))
	file := path.Join(lockDir, "requirements.txt")
	args := append(append([]string{}, pip...), "--no-deps", "--require-hashes", "-r", file)
	data := pylock.Requirements(pins, lock.Indexes)
	return Step{Name: name, Apply: func(st llb.State) llb.State {
		reqs := llb.Scratch().File(llb.Mkfile("/requirements.txt", 0o644, data, llb.WithCreatedTime(*epoch())),
			llb.WithCustomName("[ispec] pinned requirements"))
		opts := append(pipOptions(plat, secrets, netrc),
			llb.Args(args),
			llb.AddMount(lockDir, reqs, llb.Readonly),
			llb.WithCustomName(name),
		)
		return st.Run(opts...).Root()
	}}
}
