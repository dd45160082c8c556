package executor

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

//go:embed executor.py
var executorScript []byte

// DebugpyVersion is the debugpy release plldb is tested with; the install hint names it.
const DebugpyVersion = "1.8.22"

// FindPython picks the interpreter for a function: explicit if given (a path, or a name looked up on PATH), else
// .venv/bin/python or venv/bin/python in the first of dirs that has one (the template folder, the code folder),
// else python3 on PATH.
func FindPython(explicit string, dirs ...string) (string, error) {
	if explicit != "" {
		p, err := exec.LookPath(explicit)
		if err != nil {
			return "", fmt.Errorf("python interpreter %q: %w", explicit, err)
		}
		return absPath(p), nil
	}
	var looked []string
	for _, d := range dirs {
		if d == "" {
			continue
		}
		for _, venv := range []string{".venv", "venv"} {
			p := filepath.Join(d, venv, "bin", "python")
			looked = append(looked, p)
			if isExecutable(p) {
				return absPath(p), nil
			}
		}
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		where := "python3 on PATH"
		if len(looked) > 0 {
			where = strings.Join(looked, ", ") + " and " + where
		}
		return "", fmt.Errorf("no python interpreter found (looked for %s): create a virtualenv next to the "+
			"template (python3 -m venv .venv) or name the interpreter explicitly", where)
	}
	return absPath(p), nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

var (
	scriptOnce sync.Once
	scriptPath string
	scriptErr  error
)

// writeScript puts the embedded executor where Python can run it. The name carries the content hash, so
// binaries of different versions never run each other's script and an existing file is reused as is.
func writeScript() (string, error) {
	scriptOnce.Do(func() {
		sum := sha256.Sum256(executorScript)
		name := "executor-" + hex.EncodeToString(sum[:])[:16] + ".py"
		var dirs []string
		if d, err := os.UserCacheDir(); err == nil {
			dirs = append(dirs, filepath.Join(d, "plldb"))
		}
		dirs = append(dirs, filepath.Join(os.TempDir(), "plldb-"+strconv.Itoa(os.Getuid())))
		var errs []error
		for _, dir := range dirs {
			p, err := writeScriptIn(dir, name)
			if err == nil {
				scriptPath = p
				return
			}
			errs = append(errs, err)
		}
		scriptErr = fmt.Errorf("write executor script: %w", errors.Join(errs...))
	})
	return scriptPath, scriptErr
}

func writeScriptIn(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	if b, err := os.ReadFile(p); err == nil && string(b) == string(executorScript) {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, name+".*")
	if err != nil {
		return "", fmt.Errorf("create temp file in %s: %w", dir, err)
	}
	_, werr := f.Write(executorScript)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", f.Name(), errors.Join(werr, cerr))
	}
	// Rename is atomic, so concurrent starts never run a half-written file.
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("install %s: %w", p, err)
	}
	return p, nil
}

// runtimeVersion extracts "3.12" from a Lambda runtime identifier such as "python3.12"; "" if it is not one.
func runtimeVersion(runtime string) string {
	v, ok := strings.CutPrefix(runtime, "python")
	if !ok {
		return ""
	}
	return v
}

// majorMinor turns "3.11.7" into (3, 11).
func majorMinor(v string) (int, int, bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	a, err1 := strconv.Atoi(parts[0])
	b, err2 := strconv.Atoi(parts[1])
	return a, b, err1 == nil && err2 == nil
}
