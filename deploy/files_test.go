package deploy_test

import (
	"os"
	"path/filepath"
)

// statRepo stats a path relative to the repository root.
func statRepo(rel string) (os.FileInfo, error) {
	return os.Stat(filepath.Join(repoRoot, rel))
}

// readRepo reads a file relative to the repository root.
func readRepo(rel string) (string, error) {
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	return string(b), err
}
