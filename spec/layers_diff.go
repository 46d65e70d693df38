package spec

import (
	"encoding/json"
	"fmt"
)

// LayerDifference names the first layer item in which two layered specs
// differ: it and every layer after it are built again, the layers before
// it are reused.
type LayerDifference struct {
	// Index is the item's position in layers (in both specs).
	Index int `json:"index"`
	// A and B are the item's kind in each spec ("" when it has none).
	A string `json:"a"`
	B string `json:"b"`
	// Why says what differs: "packages", "added", "removed" or "kind".
	Why string `json:"why"`
}

// Field is the item's field path, as errors name it: "layers[2]".
func (d LayerDifference) Field() string { return LayerField(d.Index) }

// String says which layer differs and how.
func (d LayerDifference) String() string {
	switch d.Why {
	case "added":
		return fmt.Sprintf("%s (%s) is new in b", d.Field(), d.B)
	case "removed":
		return fmt.Sprintf("%s (%s) is only in a", d.Field(), d.A)
	case "kind":
		return fmt.Sprintf("%s is %s in a and %s in b", d.Field(), d.A, d.B)
	}
	return fmt.Sprintf("%s (%s) differs in %s", d.Field(), d.A, d.Why)
}

// FirstLayerDifference compares the layers of two images' hash documents
// in order and names the first item that differs, or returns false when
// they have the same layers. What comes before the layers (the flat
// fields, the base image) is compared by Diff.
func FirstLayerDifference(a, b *Image) (LayerDifference, bool) {
	la, lb := docLayers(a.Document), docLayers(b.Document)
	for i := 0; i < max(len(la), len(lb)); i++ {
		d := LayerDifference{Index: i}
		switch {
		case i >= len(la):
			d.B, d.Why = layerKindOf(lb[i]), "added"
			return d, true
		case i >= len(lb):
			d.A, d.Why = layerKindOf(la[i]), "removed"
			return d, true
		}
		d.A, d.B = layerKindOf(la[i]), layerKindOf(lb[i])
		if d.A != d.B {
			d.Why = "kind"
			return d, true
		}
		if show(la[i]) == show(lb[i]) {
			continue
		}
		ma, _ := la[i].(map[string]any)
		mb, _ := lb[i].(map[string]any)
		keys := map[string]bool{}
		for k := range ma {
			keys[k] = true
		}
		for k := range mb {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			if show(ma[k]) != show(mb[k]) {
				d.Why = k
				break
			}
		}
		return d, true
	}
	return LayerDifference{}, false
}

func docLayers(doc []byte) []any {
	var m struct {
		Spec struct {
			Layers []any `json:"layers"`
		} `json:"spec"`
	}
	_ = json.Unmarshal(doc, &m)
	return m.Spec.Layers
}

// layerKindOf names an item of the document's layers by its kind.
func layerKindOf(item any) string {
	m, _ := item.(map[string]any)
	for _, k := range layerKinds() {
		if _, ok := m[k]; ok {
			return k
		}
	}
	return ""
}
