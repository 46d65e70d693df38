package spec

import "fmt"

// LayersEncoding names the canonical encoding of a spec that gives
// layers: Encoding's document plus the layers in order
// (docs/identity.md, section 9). A spec without layers is hashed under
// Encoding, unchanged.
const LayersEncoding = "ispec.layers/v1"

// LayersRecipeVersion is the version of the builder's recipe for layers
// (one layer per item, in order). It is hashed in every layered spec's
// document, beside RecipeVersion, and must change whenever the builder
// changes the layers it makes for the same items.
const LayersRecipeVersion = "1"

// addLayers puts a layered spec's layers into its hash document, in
// order, and names the layers encoding. It leaves a flat spec's document
// as it was.
func (img *Image) addLayers(doc, sp map[string]any) {
	s := img.Spec
	if len(s.Layers) == 0 {
		return
	}
	doc["encoding"] = LayersEncoding
	doc["layers_recipe"] = LayersRecipeVersion
	items := make([]any, len(s.Layers))
	for i, l := range s.Layers {
		var lt *LayerTrees
		if i < len(img.Layers) {
			lt = img.Layers[i]
		}
		items[i] = layerDocument(l, lt)
	}
	sp["layers"] = items
}

// layerDocument is one item of the layers member: an object with the
// kind's member and, for pip layers, the options the item sets.
func layerDocument(l Layer, lt *LayerTrees) map[string]any {
	m := map[string]any{}
	if lt == nil {
		lt = &LayerTrees{}
	}
	switch l.Kind {
	case LayerApt:
		m[string(l.Kind)] = l.AptPackages
	case LayerPackages:
		m[string(l.Kind)] = l.Packages
	case LayerCommands:
		m[string(l.Kind)] = l.Commands
	case LayerWorkdir:
		m[string(l.Kind)] = l.Workdir
	case LayerEnv:
		m[string(l.Kind)] = l.Env
	case LayerRequirements:
		if lt.Requirements != nil {
			m[string(l.Kind)] = requirementsDoc(lt.Requirements, lt.RequirementsFile)
		}
	case LayerWheels:
		if lt.Wheels != nil {
			m[string(l.Kind)] = lt.Wheels.Digest
		}
	case LayerUVProject:
		if lt.Pyproject != nil && lt.UVLock != nil {
			m[string(l.Kind)] = map[string]any{"pyproject": lt.Pyproject.Digest, "uvlock": lt.UVLock.Digest}
		}
	case LayerCopy:
		cp := make([]any, len(l.Copy))
		for j, p := range l.Copy {
			e := map[string]any{"dst": p.Dst}
			if j < len(lt.Copies) {
				e["tree"] = lt.Copies[j].Digest
			}
			cp[j] = e
		}
		m[string(l.Kind)] = cp
	default:
		panic(fmt.Sprintf("spec: layer kind %q", l.Kind))
	}
	if l.Pip.Index != "" {
		m["pip_index"] = l.Pip.Index
	}
	if len(l.Pip.ExtraIndexURL) > 0 {
		m["pip_extra_index_url"] = l.Pip.ExtraIndexURL
	}
	if args, _ := splitArgs(l.Pip.ExtraArgs); len(args) > 0 {
		m["pip_extra_args"] = args
	}
	if l.Pip.Pre {
		m["pre"] = "true"
	}
	if l.Pip.AllowChanges {
		m["allow_changes"] = "true"
	}
	return m
}

// requirementsDoc is a requirements file's member of the hash document,
// as the flat requirements field has it: the file's digest alone, or with
// the files it includes.
func requirementsDoc(t *Tree, file string) any {
	img := &Image{Requirements: t, RequirementsFile: file}
	return img.requirementsDocument()
}
