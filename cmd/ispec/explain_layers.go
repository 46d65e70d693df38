package main

import (
	"fmt"

	"github.com/ispec-dev/ispec/spec"
)

// layerTrees lists the trees of a layered spec's items, named by the
// item's field path (layers[2].copy[0] src).
func layerTrees(img *spec.Image) []labeledTree {
	var out []labeledTree
	for i, lt := range img.Layers {
		l := img.Spec.Layers[i]
		f := spec.LayerField(i) + "." + string(l.Kind)
		if lt.Requirements != nil {
			out = append(out, labeledTree{f + " " + printable(l.Requirements), lt.Requirements})
		}
		if lt.Wheels != nil {
			out = append(out, labeledTree{f + " " + printable(l.PythonWheels), lt.Wheels})
		}
		if lt.Pyproject != nil {
			out = append(out, labeledTree{f + ".pyproject " + printable(l.UVProject.Pyproject), lt.Pyproject})
		}
		if lt.UVLock != nil {
			out = append(out, labeledTree{f + ".uvlock " + printable(l.UVProject.UVLock), lt.UVLock})
		}
		for j, t := range lt.Copies {
			out = append(out, labeledTree{fmt.Sprintf("%s[%d] %s", f, j, printable(l.Copy[j].Src)), t})
		}
	}
	return out
}
