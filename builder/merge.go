package builder

import (
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"
)

// placement is where a step runs in the merged graph: on what, and so
// after which other steps.
type placement int

const (
	// onPrevious: the step may depend on anything before it (pip needs
	// apt's libraries and the venv; commands may read anything), so it
	// runs on the merge of everything before it.
	onPrevious placement = iota
	// fromBase: the step needs only the base; it runs on the base in a
	// branch of its own, beside the other fromBase steps before it.
	fromBase
	// onTop: the step needs only the base and nothing after it reads its
	// result (copied files, as COPY --link); it runs on the base and its
	// layer goes on top of everything else.
	onTop
	// underAll: the step runs on the base before every other step, and
	// every other step runs on its result, as if it were part of the base
	// (the image's user: later layers then see its accounts and the owner
	// it gives /root, including the parent folders a layer carries).
	underAll
)

// aptInstallsPython reports whether the apt step may install what the
// venv step needs: a Debian package named python* or libpython* (an
// interpreter, python3-venv). The virtual environment is then made after
// the apt step, not beside it.
func aptInstallsPython(pkgs []string) bool {
	for _, p := range pkgs {
		if strings.HasPrefix(p, "python") || strings.HasPrefix(p, "libpython") {
			return true
		}
	}
	return false
}

// mergedGraph adds steps to base as a graph rather than a line:
//
//   - the leading underAll step (the image's user) runs on the base, and
//     its result is the base of everything below;
//   - the leading fromBase steps (apt install, venv creation) each run on
//     the base, in parallel, and their layers (llb.Diff against the base)
//     are joined with llb.Merge;
//   - the onPrevious steps (pip, commands) run one after the other on
//     that merge;
//   - each onTop step (copied files and source) runs on the base alone
//     and its layer is merged on top of the rest.
//
// The merge inputs are the base and then the steps' layers in the order of
// steps, so that the image has one layer per step in the order of its
// history, as in the linear graph. A step out of that order (a fromBase
// step after an onPrevious one, anything after an onTop one) runs on the
// state before it, as in the linear graph.
func mergedGraph(base llb.State, steps []Step) llb.State {
	i := 0
	for ; i < len(steps) && steps[i].place == underAll; i++ {
		base = steps[i].Apply(base)
	}
	var branches []Step
	for ; i < len(steps) && steps[i].place == fromBase; i++ {
		branches = append(branches, steps[i])
	}
	st := base
	switch len(branches) {
	case 0:
	case 1:
		st = branches[0].Apply(base)
	default:
		layers := []llb.State{base}
		for _, s := range branches {
			layers = append(layers, llb.Diff(base, s.Apply(base), llb.WithCustomName("[ispec] layer of "+stepTitle(s))))
		}
		// Merge keeps the metadata of its first input, the base: the
		// branches' env is applied again on the merge.
		st = llb.Merge(layers, llb.WithCustomName("[ispec] merge base and "+strconv.Itoa(len(branches))+" layers"))
		for _, s := range branches {
			if s.meta != nil {
				st = s.meta(st)
			}
		}
	}
	for ; i < len(steps) && steps[i].place != onTop; i++ {
		st = steps[i].Apply(st)
	}
	top := []llb.State{st}
	for ; i < len(steps) && steps[i].place == onTop; i++ {
		s := steps[i]
		top = append(top, llb.Diff(base, s.Apply(base), llb.WithCustomName("[ispec] layer of "+stepTitle(s))))
	}
	if len(top) > 1 {
		st = llb.Merge(top, llb.WithCustomName("[ispec] merge "+strconv.Itoa(len(top)-1)+" copied layers on top"))
	}
	for ; i < len(steps); i++ {
		st = steps[i].Apply(st)
	}
	return st
}

// stepTitle is a step's name without the "[ispec] " prefix.
func stepTitle(s Step) string { return strings.TrimPrefix(s.Name, "[ispec] ") }
