package validate

import (
	"fmt"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered Kubernetes object: its identity and its JSON.
type Object struct {
	APIVersion, Kind, Namespace, Name string
	JSON                              []byte
}

// ID names the object in messages, e.g. "apps/v1 Deployment ispec/ispec".
func (o Object) ID() string {
	return fmt.Sprintf("%s %s %s/%s", o.APIVersion, o.Kind, o.Namespace, o.Name)
}

// Render runs kustomize on the kustomization in dir of fsys and returns the
// objects it produces.
func Render(fsys filesys.FileSystem, dir string) ([]Object, error) {
	opts := krusty.MakeDefaultOptions()
	m, err := krusty.MakeKustomizer(opts).Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []Object
	for _, r := range m.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		out = append(out, Object{
			APIVersion: r.GetApiVersion(), Kind: r.GetKind(),
			Namespace: r.GetNamespace(), Name: r.GetName(), JSON: data,
		})
	}
	return out, nil
}
