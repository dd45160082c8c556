// Package layerzip builds the plldb Lambda layer: the exec wrapper and a static proxy binary for one
// architecture, zipped so that Lambda unpacks them to /opt/plldb/wrapper and /opt/plldb/proxy.
package layerzip

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/plldb/plldb/layer/wrapper"
)

// ProxyPackage is the import path of the proxy command.
const ProxyPackage = "github.com/plldb/plldb/layer/cmd/proxy"

// Options says what to build.
type Options struct {
	Arch string // Lambda's name: "x86_64" or "arm64"
	Out  string // zip file to write
	Dir  string // a directory inside the module (go build runs there); default the current one
	Go   string // go command; default "go" from PATH, else GOROOT/bin/go
	Tags string // extra build tags, e.g. "plldb_wsclient"
}

// GOARCH maps Lambda's architecture names to Go's.
func GOARCH(arch string) (string, error) {
	switch arch {
	case "x86_64":
		return "amd64", nil
	case "arm64":
		return "arm64", nil
	}
	return "", fmt.Errorf("unknown architecture %q: Lambda has x86_64 and arm64", arch)
}

// HostArch is the Lambda architecture name of the machine running this code ("" if Lambda has none).
func HostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "arm64"
	}
	return ""
}

// zipTime is fixed so that the same sources give the same zip.
var zipTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Build cross-compiles the proxy and writes the layer zip.
func Build(ctx context.Context, o Options) error {
	goarch, err := GOARCH(o.Arch)
	if err != nil {
		return err
	}
	if o.Out == "" {
		return fmt.Errorf("no output file given")
	}
	goCmd := o.Go
	if goCmd == "" {
		if goCmd, err = exec.LookPath("go"); err != nil {
			return fmt.Errorf("build layer: the Go toolchain is needed on PATH: %w", err)
		}
	}
	tmp, err := os.MkdirTemp("", "plldb-layer-")
	if err != nil {
		return fmt.Errorf("build layer: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "proxy")
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin}
	if o.Tags != "" {
		args = append(args, "-tags", o.Tags)
	}
	args = append(args, ProxyPackage)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build proxy for linux/%s: %w\n%s", goarch, err, out)
	}
	proxyBin, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("read built proxy: %w", err)
	}
	var buf bytes.Buffer
	if err := writeZip(&buf, wrapper.Script, proxyBin); err != nil {
		return fmt.Errorf("zip layer: %w", err)
	}
	if dir := filepath.Dir(o.Out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	// Write then rename, so a failed build never leaves a truncated zip where make expects a good one.
	part := o.Out + ".part"
	if err := os.WriteFile(part, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", part, err)
	}
	if err := os.Rename(part, o.Out); err != nil {
		return fmt.Errorf("write %s: %w", o.Out, err)
	}
	return nil
}

func writeZip(w io.Writer, script, proxyBin []byte) error {
	zw := zip.NewWriter(w)
	dir := &zip.FileHeader{Name: "plldb/", Modified: zipTime}
	dir.SetMode(os.ModeDir | 0o755)
	if _, err := zw.CreateHeader(dir); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"plldb/wrapper", script}, {"plldb/proxy", proxyBin}} {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: zipTime}
		h.SetMode(0o755)
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("add %s: %w", f.name, err)
		}
		if _, err := fw.Write(f.data); err != nil {
			return fmt.Errorf("add %s: %w", f.name, err)
		}
	}
	return zw.Close()
}

// Unzip extracts a layer zip into dir, keeping file modes: what Lambda does with /opt.
func Unzip(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return fmt.Errorf("open layer %s: %w", zipPath, err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		dst := filepath.Join(dir, filepath.FromSlash(f.Name))
		if rel, err := filepath.Rel(dir, dst); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("layer %s: entry %q escapes the target directory", zipPath, f.Name)
		}
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return fmt.Errorf("unzip %s: %w", f.Name, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("unzip %s: %w", f.Name, err)
		}
		if err := extract(f, dst); err != nil {
			return fmt.Errorf("unzip %s: %w", f.Name, err)
		}
	}
	return nil
}

func extract(f *zip.File, dst string) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, f.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
