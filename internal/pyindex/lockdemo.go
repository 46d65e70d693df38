package pyindex

import "fmt"

// LockDemo lists the wheels the lock file fixtures (pylock/testdata) pin,
// and one newer version they do not:
//
//	ispec-lk-core 1.0.0 (requires ispec-lk-util>=1.0; its extra "fast"
//	adds ispec-lk-fast), ispec-lk-util 1.0.0 and 1.1.0, ispec-lk-fast
//	0.5.0, ispec-lk-amd 1.0.0 (the fixtures' project wants it on x86_64
//	only) and ispec-lk-devtool 1.0.0 (in the fixtures' dev group only).
//
// The fixtures hold these wheels' sha256 sums; Build makes the same bytes
// every time.
var LockDemo = []Wheel{
	{Name: "ispec-lk-core", Version: "1.0.0", ProvidesExtra: []string{"fast"}, RequiresDist: []string{"ispec-lk-util>=1.0", `ispec-lk-fast>=0.5; extra == "fast"`}},
	{Name: "ispec-lk-util", Version: "1.0.0"},
	{Name: "ispec-lk-util", Version: "1.1.0"},
	{Name: "ispec-lk-fast", Version: "0.5.0"},
	{Name: "ispec-lk-amd", Version: "1.0.0"},
	{Name: "ispec-lk-devtool", Version: "1.0.0"},
}

// WriteLockDemo writes the LockDemo wheels into dir.
func WriteLockDemo(dir string) error {
	for _, w := range LockDemo {
		if _, err := Write(dir, w); err != nil {
			return fmt.Errorf("write lock demo wheel %s %s: %w", w.Name, w.Version, err)
		}
	}
	return nil
}
