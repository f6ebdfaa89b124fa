// Command modproxy writes a file-based Go module proxy (GOPROXY=file://DIR)
// holding the modules of this checkout at one version, as the public proxy
// would serve them once that version is tagged. CI points a throwaway
// consumer module at it, with GOWORK=off and no replace directive, to prove
// that a user can build each integration module against the released core.
//
// Usage:
//
//	modproxy -out DIR -version v0.3.0 MODULE_DIR...
//
// For each module directory it writes, in the proxy layout,
// <escaped module path>/@v/list, VERSION.info, VERSION.mod (the module's
// go.mod) and VERSION.zip (the module's files, in the module zip layout:
// nested modules, VCS directories and vendor trees left out, exactly as the
// go command does for a tag). With -require PATH@VERSION the go.mod served
// (and zipped) gets that requirement instead of its own, to show that CI
// fails when an integration requires a core version that does not exist.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("modproxy", flag.ContinueOnError)
	out := fs.String("out", "", "proxy directory to write (created if needed)")
	version := fs.String("version", "", "version to publish every module at, e.g. v0.3.0")
	require := fs.String("require", "", "PATH@VERSION: replace this requirement in the published go.mod files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("usage: modproxy -out DIR -version VERSION MODULE_DIR [MODULE_DIR ...]")
	}
	if !semver.IsValid(*version) || semver.Canonical(*version) != *version {
		return fmt.Errorf("invalid version %q", *version)
	}
	var override *module.Version
	if *require != "" {
		p, v, ok := strings.Cut(*require, "@")
		if !ok {
			return fmt.Errorf("-require %q: want PATH@VERSION", *require)
		}
		override = &module.Version{Path: p, Version: v}
	}
	for _, dir := range fs.Args() {
		if err := publish(*out, dir, *version, override); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
	return nil
}

func publish(out, dir, version string, override *module.Version) error {
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	mf, err := modfile.Parse(filepath.Join(dir, "go.mod"), gomod, nil)
	if err != nil {
		return err
	}
	if mf.Module == nil {
		return errors.New("go.mod has no module line")
	}
	mod := module.Version{Path: mf.Module.Mod.Path, Version: version}
	if err := module.Check(mod.Path, mod.Version); err != nil {
		return err
	}
	if override != nil && override.Path == mod.Path {
		override = nil // a module does not require itself
	}
	if override != nil {
		if err := mf.AddRequire(override.Path, override.Version); err != nil {
			return err
		}
		if gomod, err = mf.Format(); err != nil {
			return err
		}
	}
	esc, err := module.EscapePath(mod.Path)
	if err != nil {
		return err
	}
	vdir := filepath.Join(out, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}

	// The zip holds the go.mod served, so that both agree as they do on
	// the public proxy.
	src := dir
	if override != nil {
		tmp, err := os.MkdirTemp("", "modproxy-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := copyTree(dir, tmp); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, "go.mod"), gomod, 0o644); err != nil {
			return err
		}
		src = tmp
	}
	zf, err := os.Create(filepath.Join(vdir, version+".zip"))
	if err != nil {
		return err
	}
	if err := zip.CreateFromDir(zf, mod, src); err != nil {
		zf.Close()
		return err
	}
	if err := zf.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, version+".mod"), gomod, 0o644); err != nil {
		return err
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err := os.WriteFile(filepath.Join(vdir, version+".info"), info, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(vdir, "list"), []byte(version+"\n"), 0o644)
}

// copyTree copies the regular files of src into dst, skipping nested
// modules and VCS directories as the module zip does.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if rel != "." && (d.Name() == ".git" || fileExists(filepath.Join(path, "go.mod"))) {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
