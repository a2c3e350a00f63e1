package archtest

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestExamplesBuildDownstream copies every file holding an Example into a
// module of its own that requires this one (replaced by the checkout) and
// vets it there: an Example may use only the exported API, no internal
// package and no helper of the package's other test files, so that what
// the documentation shows compiles in an application.
func TestExamplesBuildDownstream(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	tmp := t.TempDir()
	var copied int
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			// bench is a module of its own; testdata and hidden folders hold no examples.
			if rel == "bench" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(src), "\nfunc Example") {
			return nil
		}
		dst := filepath.Join(tmp, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		copied++
		return os.WriteFile(dst, src, 0o644)
	})
	require.NoError(t, err)
	require.Positive(t, copied)
	mod := "module downstream.example/check\n\ngo 1.26\n\nrequire " + module + " v0.0.0\n\nreplace " + module + " => " + root + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(mod), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "go.sum"), sum, 0o644))

	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = tmp
	// Everything comes from the module cache the checkout already uses.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the Examples of %d files do not build outside the module:\n%s", copied, out)
	t.Logf("%d files of Examples build outside the module", copied)
}
