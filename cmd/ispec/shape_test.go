package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// maxFuncLines is the longest a function of the command may be: a RunE
// reads flags, calls one function and renders, as crane's verbs do.
const maxFuncLines = 60

// parseCommand parses the command's own (non-test) files.
func parseCommand(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatal("no Go file found in the command's folder")
	}
	return fset, files
}

// TestFunctionsAreShort: no function or function literal of the command
// is over maxFuncLines lines; logic belongs in the library packages.
func TestFunctionsAreShort(t *testing.T) {
	fset, files := parseCommand(t)
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			name := ""
			switch n := n.(type) {
			case *ast.FuncDecl:
				name = n.Name.Name
			case *ast.FuncLit:
				name = "a function literal"
			default:
				return true
			}
			start, end := fset.Position(n.Pos()), fset.Position(n.End())
			if lines := end.Line - start.Line + 1; lines > maxFuncLines {
				t.Errorf("%s: %s is %d lines, more than %d: split it where the split names a concept", start, name, lines, maxFuncLines)
			}
			return true
		})
	}
}

// TestNoTypeAssertionOnOwnTypes: the command never asserts a value to a
// type it declares itself: what it needs of its own values is on their
// interfaces.
func TestNoTypeAssertionOnOwnTypes(t *testing.T) {
	fset, files := parseCommand(t)
	own := map[string]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
				for _, s := range g.Specs {
					own[s.(*ast.TypeSpec).Name.Name] = true
				}
			}
		}
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			ta, ok := n.(*ast.TypeAssertExpr)
			if !ok || ta.Type == nil {
				return true
			}
			typ := ta.Type
			if st, ok := typ.(*ast.StarExpr); ok {
				typ = st.X
			}
			if id, ok := typ.(*ast.Ident); ok && own[id.Name] {
				t.Errorf("%s: a type assertion to the command's own %s: put what is needed on the interface", fset.Position(ta.Pos()), id.Name)
			}
			return true
		})
	}
}
