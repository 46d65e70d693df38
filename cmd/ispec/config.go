package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/spec"
)

// config is every setting that comes from outside a spec file, resolved
// from defaults < config file < ISPEC_* env < flags. Core packages receive
// plain values taken from it, never viper itself.
type config struct {
	Registry           string
	CacheDir           string
	BuildkitAddr       string
	BaseImage          string
	PythonBase         string
	CUDABase           string
	InsecureRegistries []string
	// PipNetrc is a netrc file with private index credentials, handed to
	// pip as a BuildKit secret.
	PipNetrc string
	// CacheRegistry is where the registry cache goes ("host[:port][/path]");
	// empty: next to each image.
	CacheRegistry string
	// RegistryCache is the registry-cache setting when given (config,
	// ISPEC_REGISTRY_CACHE or --registry-cache); nil: on for pushes only.
	RegistryCache *bool
}

// newViper reads the config file (flag --config, else ISPEC_CONFIG, else
// $XDG_CONFIG_HOME/ispec/config.yaml when present) and ISPEC_* env.
func newViper(cmd *cobra.Command) (*viper.Viper, error) {
	v := viper.New()
	v.SetEnvPrefix("ISPEC")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	v.SetDefault("base-image", spec.DefaultBaseImage)
	v.SetDefault("python-base", spec.DefaultPythonBase)
	v.SetDefault("cuda-base", spec.DefaultCUDABase)
	if dir, err := os.UserCacheDir(); err == nil {
		v.SetDefault("cache-dir", filepath.Join(dir, "ispec"))
	}
	file, _ := cmd.Flags().GetString("config")
	if file == "" {
		file = os.Getenv("ISPEC_CONFIG")
	}
	if file == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			if p := filepath.Join(dir, "ispec", "config.yaml"); fileExists(p) {
				file = p
			}
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, usageError{fmt.Errorf("reading config file %s: %w", file, err)}
		}
	}
	var bindErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" || f.Name == "help" {
			return
		}
		if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
			bindErr = err
		}
	})
	return v, bindErr
}

// loadConfig resolves the command's settings into a config.
func loadConfig(cmd *cobra.Command) (*config, error) {
	v, err := newViper(cmd)
	if err != nil {
		return nil, err
	}
	c := &config{
		Registry:           v.GetString("registry"),
		CacheDir:           v.GetString("cache-dir"),
		BuildkitAddr:       v.GetString("buildkit-addr"),
		BaseImage:          v.GetString("base-image"),
		PythonBase:         v.GetString("python-base"),
		CUDABase:           v.GetString("cuda-base"),
		InsecureRegistries: v.GetStringSlice("insecure-registries"),
		PipNetrc:           v.GetString("pip-netrc"),
		CacheRegistry:      v.GetString("cache-registry"),
	}
	if v.IsSet("registry-cache") {
		on := v.GetBool("registry-cache")
		c.RegistryCache = &on
	}
	if c.BuildkitAddr == "" {
		c.BuildkitAddr = os.Getenv("BUILDKIT_HOST")
	}
	return c, nil
}

// cacheMode is when builds use the registry cache; noCache is
// --no-registry-cache, which wins.
func (c *config) cacheMode(noCache bool) builder.CacheMode {
	switch {
	case noCache || (c.RegistryCache != nil && !*c.RegistryCache):
		return builder.CacheOff
	case c.RegistryCache != nil:
		return builder.CacheOn
	}
	return builder.CacheAuto
}

func (c *config) specOptions() spec.Options {
	return spec.Options{
		Registry: c.Registry,
		Defaults: spec.Defaults{BaseImage: c.BaseImage, PythonBase: c.PythonBase, CUDABase: c.CUDABase},
		// The pip netrc is a secret too: never copied into an image.
		SecretFiles: nonEmpty(c.PipNetrc),
	}
}

// nonEmpty is the list of the strings given that are not empty.
func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
