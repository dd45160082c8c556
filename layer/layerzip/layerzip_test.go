package layerzip

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/layer/wrapper"
)

func TestBuildBothArchitectures(t *testing.T) {
	for arch, machine := range map[string]elf.Machine{"x86_64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		t.Run(arch, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "sub", "layer-"+arch+".zip")
			require.NoError(t, Build(t.Context(), Options{Arch: arch, Out: out}))
			zr, err := zip.OpenReader(out)
			require.NoError(t, err)
			defer zr.Close()
			files := map[string]*zip.File{}
			for _, f := range zr.File {
				files[f.Name] = f
			}
			require.Contains(t, files, "plldb/wrapper")
			require.Contains(t, files, "plldb/proxy")
			assert.Len(t, files, 3, "plldb/, wrapper, proxy and nothing else")
			for _, name := range []string{"plldb/wrapper", "plldb/proxy"} {
				assert.Equal(t, os.FileMode(0o755), files[name].Mode().Perm(), name)
			}
			assert.Equal(t, wrapper.Script, read(t, files["plldb/wrapper"]))

			bin := read(t, files["plldb/proxy"])
			ef, err := elf.NewFile(bytes.NewReader(bin))
			require.NoError(t, err)
			assert.Equal(t, machine, ef.Machine)
			assert.Nil(t, ef.Section(".interp"), "static binary: no dynamic loader")
			assert.Nil(t, ef.Section(".symtab"), "stripped (-s)")
			_, err = os.Stat(out + ".part")
			assert.True(t, os.IsNotExist(err), "no partial file left behind")
		})
	}
}

func TestBuildRejectsUnknownArch(t *testing.T) {
	err := Build(t.Context(), Options{Arch: "sparc", Out: filepath.Join(t.TempDir(), "x.zip")})
	require.ErrorContains(t, err, `unknown architecture "sparc"`)
	require.ErrorContains(t, Build(t.Context(), Options{Arch: "arm64"}), "no output file")
}

func TestUnzipKeepsModesAndRefusesEscapes(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	require.NoError(t, writeZip(&buf, wrapper.Script, []byte("#!/bin/sh\necho proxy\n")))
	good := filepath.Join(dir, "good.zip")
	require.NoError(t, os.WriteFile(good, buf.Bytes(), 0o644))
	opt := filepath.Join(dir, "opt")
	require.NoError(t, Unzip(good, opt))
	st, err := os.Stat(filepath.Join(opt, "plldb", "proxy"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())

	buf.Reset()
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("../evil")
	require.NoError(t, err)
	_, _ = w.Write([]byte("x"))
	require.NoError(t, zw.Close())
	bad := filepath.Join(dir, "bad.zip")
	require.NoError(t, os.WriteFile(bad, buf.Bytes(), 0o644))
	require.ErrorContains(t, Unzip(bad, filepath.Join(dir, "opt2")), `entry "../evil" escapes`)
	_, err = os.Stat(filepath.Join(dir, "evil"))
	assert.True(t, os.IsNotExist(err))
}

// The wrapper runs the runtime without plldb when the proxy is missing, instead of breaking the function.
func TestWrapperWithoutProxyRunsTheRuntime(t *testing.T) {
	dir := t.TempDir()
	w := filepath.Join(dir, "wrapper")
	require.NoError(t, os.WriteFile(w, wrapper.Script, 0o755))
	out, err := exec.Command("sh", "-c", `exec "$0" echo runtime ran "$@"`, w, "with", "args").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "proxy is missing")
	assert.Contains(t, string(out), "runtime ran with args\n")
}

// The wrapper execs the proxy beside it with the runtime command unchanged, even through a relative symlink.
func TestWrapperExecsProxyWithArgs(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "opt", "plldb"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "opt", "plldb", "wrapper"), wrapper.Script, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "opt", "plldb", "proxy"),
		[]byte("#!/bin/sh\nfor a in \"$@\"; do echo \"arg:$a\"; done\n"), 0o755))
	require.NoError(t, os.Symlink("opt/plldb/wrapper", filepath.Join(dir, "link")))
	out, err := exec.Command(filepath.Join(dir, "link"), "python3", "a b", "").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "arg:python3\narg:a b\narg:\n", string(out))
}

func read(t *testing.T, f *zip.File) []byte {
	t.Helper()
	rc, err := f.Open()
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}
