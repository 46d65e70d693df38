package pyindex

import "fmt"

// Demo lists the wheels the development environment serves:
//
//	ispec-demo-a 1.0.0 and 1.1.0, ispec-demo-b 2.0.0 (no dependencies),
//	ispec-demo-c 0.1.0 (requires ispec-demo-a>=1.0).
//
// Each installs a package (ispec_demo_a, ...) whose __version__ is its
// version and whose `python -m` prints "<name> <version>".
var Demo = []Wheel{
	{Name: "ispec-demo-a", Version: "1.0.0"},
	{Name: "ispec-demo-a", Version: "1.1.0"},
	{Name: "ispec-demo-b", Version: "2.0.0"},
	{Name: "ispec-demo-c", Version: "0.1.0", RequiresDist: []string{"ispec-demo-a>=1.0"}},
}

// WriteDemo writes the Demo and StandIns wheels into dir.
func WriteDemo(dir string) error {
	for _, w := range append(append([]Wheel{}, Demo...), StandIns...) {
		if _, err := Write(dir, w); err != nil {
			return fmt.Errorf("write demo wheel %s %s: %w", w.Name, w.Version, err)
		}
	}
	return nil
}
