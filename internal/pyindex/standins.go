package pyindex

// StandIns are small wheels named after the mission's example packages,
// tensorflow, pillow and scipy, and numpy, which two of them require, for
// the worked example of docs/lockfile.md: the development index serves
// them (WriteDemo), so that the example runs without PyPI. Each installs
// a module of its name whose __version__ is its version; the versions
// and dependencies follow the real ones:
//
//	tensorflow 2.18.0 (requires numpy>=1.26.0), pillow 11.0.0,
//	scipy 1.14.1 (requires numpy>=1.23.5), numpy 2.1.3.
var StandIns = []Wheel{
	{Name: "tensorflow", Version: "2.18.0", RequiresDist: []string{"numpy>=1.26.0"}, Summary: "A stand-in for TensorFlow"},
	{Name: "pillow", Version: "11.0.0", Summary: "A stand-in for Pillow"},
	{Name: "scipy", Version: "1.14.1", RequiresDist: []string{"numpy>=1.23.5"}, Summary: "A stand-in for SciPy"},
	{Name: "numpy", Version: "2.1.3", Summary: "A stand-in for NumPy"},
}

// PillowLater is a pillow newer than StandIns' that the development index
// does not serve: the worked example's test publishes it to show drift.
var PillowLater = Wheel{Name: "pillow", Version: "11.1.0", Summary: "A stand-in for Pillow"}
