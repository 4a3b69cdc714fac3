package deploy_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/scpgate/scpgate/scpbridge"
)

// closeReasons returns the values of every CloseReason constant declared
// in the root package's reason.go.
func closeReasons(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot, "reason.go"), nil, 0)
	if err != nil {
		t.Fatalf("parse reason.go: %v", err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "CloseReason" {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, s)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("reason.go declares no CloseReason constants")
	}
	return out
}

// rejectReasons returns the name of every reject reason scpbridge knows.
func rejectReasons() []string {
	var out []string
	for i := 1; i < 256; i++ {
		r := scpbridge.RejectReason(i)
		if s := r.String(); s != fmt.Sprintf("reject_%d", i) {
			out = append(out, s)
		}
	}
	return out
}

// TestOperationsDocReasons checks that docs/operations.md explains every
// close reason and every reject reason in its troubleshooting tables.
func TestOperationsDocReasons(t *testing.T) {
	doc, err := readRepo("docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(doc, "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 3 {
			rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = true
		}
	}
	for _, r := range closeReasons(t) {
		if !rows[r] {
			t.Errorf("docs/operations.md: close reason %q has no row in the troubleshooting table", r)
		}
	}
	rejects := rejectReasons()
	if len(rejects) == 0 {
		t.Fatal("scpbridge names no reject reasons")
	}
	for _, r := range rejects {
		if !rows[r] {
			t.Errorf("docs/operations.md: reject reason %q has no row in the troubleshooting table", r)
		}
	}
}
