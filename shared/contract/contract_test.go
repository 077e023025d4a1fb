package contract

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// pkgPath is this package's import path.
const pkgPath = "github.com/qinqing/qinqing/shared/contract"

// adminPath is the import path of the operator wire types.
const adminPath = pkgPath + "/admin"

// declared parses the (non-test) files of this package, or of its
// subpackage dir: the cn.huzhou.* constants by name, and the names of the
// exported struct types.
func declared(t *testing.T, dir string) (types map[string]string, structs []string) {
	t.Helper()
	types = map[string]string{}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range g.Specs {
				switch s := s.(type) {
				case *ast.ValueSpec:
					for i, v := range s.Values {
						if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if val, _ := strconv.Unquote(lit.Value); strings.HasPrefix(val, "cn.huzhou.") {
								types[s.Names[i].Name] = val
							}
						}
					}
				case *ast.TypeSpec:
					if _, ok := s.Type.(*ast.StructType); ok && s.Name.IsExported() {
						structs = append(structs, s.Name.Name)
					}
				}
			}
		}
	}
	return types, structs
}

// TestEveryCataloguedTypeHasData fails when a function consumes a type
// that has no data type in Events.
func TestEveryCataloguedTypeHasData(t *testing.T) {
	for _, s := range Catalog {
		for _, typ := range s.Types {
			if _, ok := DataOf(typ); !ok {
				t.Errorf("%s consumes %s, which Events does not list (add it with its data struct)", s.Function, typ)
			}
		}
	}
}

// TestEventsMatchTheDeclaredTypes holds Events against the constants: each
// declared cn.huzhou.* constant is registered exactly once, and every
// registered type is a declared constant.
func TestEventsMatchTheDeclaredTypes(t *testing.T) {
	consts, _ := declared(t, ".")
	byValue := map[string]string{}
	for name, v := range consts {
		if other, dup := byValue[v]; dup {
			t.Errorf("%s and %s both name %s", name, other, v)
		}
		byValue[v] = name
	}
	seen := map[string]bool{}
	for _, e := range Events {
		if seen[e.Type] {
			t.Errorf("Events lists %s twice", e.Type)
		}
		seen[e.Type] = true
		if _, ok := byValue[e.Type]; !ok {
			t.Errorf("Events lists %s, which no constant of this package declares", e.Type)
		}
		if rt := reflect.TypeOf(e.Data); rt == nil || rt.Kind() != reflect.Struct || rt.PkgPath() != pkgPath {
			t.Errorf("Events: the data of %s is %v, want a struct of this package (a zero value, not a pointer)", e.Type, rt)
		}
	}
	for v, name := range byValue {
		if !seen[v] {
			t.Errorf("%s (%s) is declared but not in Events: register it with its data struct", name, v)
		}
	}
}

// TestEveryStructBelongsToAnEvent fails when a struct of this package is
// neither the data of a registered event (or a part of one) nor an
// operator wire type in Admin: a payload type nothing carries.
func TestEveryStructBelongsToAnEvent(t *testing.T) {
	reached := map[string]bool{}
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Array || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		key := rt.PkgPath() + "." + rt.Name()
		if rt.Kind() != reflect.Struct || (rt.PkgPath() != pkgPath && rt.PkgPath() != adminPath) || reached[key] {
			return
		}
		reached[key] = true
		for i := 0; i < rt.NumField(); i++ {
			walk(rt.Field(i).Type)
		}
	}
	for _, e := range Events {
		walk(reflect.TypeOf(e.Data))
	}
	for _, a := range Admin {
		walk(reflect.TypeOf(a))
	}
	_, structs := declared(t, ".")
	for _, s := range structs {
		if !reached[pkgPath+"."+s] && s != "Event" && s != "Subscription" { // the registry and the catalogue themselves
			t.Errorf("struct %s is the data of no event in Events and not in Admin: register it or drop it", s)
		}
	}
	_, structs = declared(t, "admin")
	if len(structs) == 0 {
		t.Fatal("no structs found in admin/")
	}
	for _, s := range structs {
		if !reached[adminPath+"."+s] {
			t.Errorf("struct admin.%s is not in Admin (nor a part of one): register it or drop it", s)
		}
	}
}

// source is the repository's Go code outside this package, parsed.
type source struct {
	fset  *token.FileSet
	files map[string]*ast.File // by path, test files excluded
}

func parseRepo(t *testing.T) source {
	t.Helper()
	src := source{fset: token.NewFileSet(), files: map[string]*ast.File{}}
	for _, dir := range []string{"../../functions", "../../cmd", "../../shared"} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || p == "../../shared/contract") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(src.fset, p, nil, 0)
			if err != nil {
				return err
			}
			src.files[p] = f
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(src.files) < 50 {
		t.Fatalf("found only %d Go files outside shared/contract: is the test running in shared/contract?", len(src.files))
	}
	return src
}

// contractName returns X for the expression contract.X, else "".
func contractName(e ast.Expr) string {
	if s, ok := e.(*ast.SelectorExpr); ok {
		if id, ok := s.X.(*ast.Ident); ok && id.Name == "contract" {
			return s.Sel.Name
		}
	}
	return ""
}

// TestEveryRegisteredTypeIsUsed fails when no function's code names an
// event type of Events or an operator wire type: a type that nobody
// produces or consumes.
func TestEveryRegisteredTypeIsUsed(t *testing.T) {
	src := parseRepo(t)
	used := map[string]bool{}
	for _, f := range src.files {
		ast.Inspect(f, func(n ast.Node) bool {
			if e, ok := n.(ast.Expr); ok {
				if name := contractName(e); name != "" {
					used[name] = true
				}
				if s, ok := e.(*ast.SelectorExpr); ok {
					if id, ok := s.X.(*ast.Ident); ok && id.Name == "admin" {
						used["admin."+s.Sel.Name] = true
					}
				}
			}
			return true
		})
	}
	consts, _ := declared(t, ".")
	for name, v := range consts {
		if !used[name] {
			t.Errorf("%s (%s) is named by no function or command: nothing sends or handles it", name, v)
		}
	}
	for _, e := range Events {
		if n := reflect.TypeOf(e.Data).Name(); !used[n] {
			t.Errorf("%s, the data of %s, is named by no function or command", n, e.Type)
		}
	}
	for _, a := range Admin {
		if n := "admin." + reflect.TypeOf(a).Name(); !used[n] {
			t.Errorf("admin wire type %s is named by no function or command", n)
		}
	}
}

// TestNoEventTypeIsSpelledOutElsewhere fails when code outside this
// package writes a cn.huzhou.* type as a string instead of using the
// constant (a second home for a type name).
func TestNoEventTypeIsSpelledOutElsewhere(t *testing.T) {
	src := parseRepo(t)
	for _, f := range src.files {
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, _ := strconv.Unquote(lit.Value); strings.HasPrefix(v, "cn.huzhou.") && v != "cn.huzhou." {
					t.Errorf("%s: %s spelled out; use its constant in shared/contract", src.fset.Position(lit.Pos()), v)
				}
			}
			return true
		})
	}
}

// emission is a place where a function sends an event: runtime.Reply(T,
// data), runtime.Outgoing{Type: T, Data: data}, or a handler registered
// for T whose payload parameter is *contract.D.
type emission struct {
	pos      token.Position
	typeName string // the constant T
	dataName string // the data struct, "" when it cannot be read off the code
}

// TestFunctionsUseTheRegisteredData reads every reply, follow-up and
// handler of the functions and checks that the data struct used with a
// type is the one Events registers for it (where the code names the
// struct: a literal, a variable declared with it, or a handler's
// parameter). Sites whose data is not a named struct (a stored reply
// sent again as json.RawMessage) are listed in the log.
func TestFunctionsUseTheRegisteredData(t *testing.T) {
	src := parseRepo(t)
	consts, _ := declared(t, ".")
	var ems []emission
	for p, f := range src.files {
		if !strings.HasPrefix(p, "../../functions/") && !strings.HasPrefix(p, "../../shared/") {
			continue
		}
		funcs := map[string]*ast.FuncDecl{}
		for _, other := range src.files {
			if filepath.Dir(src.fset.Position(other.Pos()).Filename) != filepath.Dir(p) {
				continue
			}
			for _, d := range other.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok {
					funcs[fd.Name.Name] = fd
				}
			}
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Reply" && len(n.Args) == 2 {
						if id, ok := sel.X.(*ast.Ident); ok && id.Name == "runtime" {
							if tn := contractName(n.Args[0]); tn != "" {
								ems = append(ems, emission{src.fset.Position(n.Pos()), tn, dataOf(funcs, fd, n.Args[1])})
							}
						}
					}
				case *ast.CompositeLit:
					if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Outgoing" {
						var tn, dn string
						for _, el := range n.Elts {
							kv, ok := el.(*ast.KeyValueExpr)
							if !ok {
								continue
							}
							switch k := kv.Key.(*ast.Ident); {
							case k == nil:
							case k.Name == "Type":
								tn = contractName(kv.Value)
							case k.Name == "Data":
								dn = dataOf(funcs, fd, kv.Value)
							}
						}
						if tn != "" {
							ems = append(ems, emission{src.fset.Position(n.Pos()), tn, dn})
						}
					}
				case *ast.KeyValueExpr:
					// Handlers: map[string]runtime.Handler{contract.T: runtime.On(f.h), …}
					tn := contractName(n.Key)
					call, ok := n.Value.(*ast.CallExpr)
					if tn == "" || !ok || len(call.Args) == 0 {
						return true
					}
					var h string
					switch fn := call.Args[len(call.Args)-1].(type) {
					case *ast.SelectorExpr:
						h = fn.Sel.Name
					case *ast.Ident:
						h = fn.Name
					}
					if hd := funcs[h]; hd != nil {
						ems = append(ems, emission{src.fset.Position(n.Pos()), tn, payloadParam(hd)})
					}
				}
				return true
			})
		}
	}
	checked := 0
	for _, e := range ems {
		typ, ok := consts[e.typeName]
		if !ok {
			t.Errorf("%s: contract.%s is not an event type", e.pos, e.typeName)
			continue
		}
		want, ok := DataOf(typ)
		if !ok {
			t.Errorf("%s: %s is not in Events", e.pos, typ)
			continue
		}
		if e.dataName == "" {
			t.Logf("%s: %s sent with data this test cannot name", e.pos, typ)
			continue
		}
		checked++
		if w := reflect.TypeOf(want).Name(); e.dataName != w {
			t.Errorf("%s: %s used with contract.%s, but Events registers contract.%s", e.pos, typ, e.dataName, w)
		}
	}
	// Every function emits or handles something: a scan that finds little
	// has stopped reading the code it is meant to check.
	if checked < 45 {
		t.Fatalf("checked only %d places where functions send or handle events", checked)
	}
	t.Logf("%d places checked against Events", checked)
}

// dataOf names the contract struct of a data expression: a composite
// literal contract.D{…}, a call of a function of the package (funcs) that
// returns a contract.D, or an identifier declared in fn as a contract.D
// (var x contract.D, x := contract.D{…}, x := call(…), a parameter). It
// returns "" otherwise.
func dataOf(funcs map[string]*ast.FuncDecl, fn *ast.FuncDecl, e ast.Expr) string {
	switch e := e.(type) {
	case *ast.CompositeLit:
		return contractName(e.Type)
	case *ast.UnaryExpr:
		return dataOf(funcs, fn, e.X)
	case *ast.CallExpr:
		var name string
		switch f := e.Fun.(type) {
		case *ast.SelectorExpr:
			name = f.Sel.Name
		case *ast.Ident:
			name = f.Name
		}
		if fd := funcs[name]; fd != nil && fd.Type.Results != nil && len(fd.Type.Results.List) > 0 {
			return contractName(fd.Type.Results.List[0].Type)
		}
		return ""
	case *ast.Ident:
		var name string
		ast.Inspect(fn, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				for i, l := range n.Lhs {
					if id, ok := l.(*ast.Ident); ok && id.Name == e.Name && i < len(n.Rhs) && n.Tok == token.DEFINE {
						if name == "" {
							switch r := n.Rhs[i].(type) {
							case *ast.CompositeLit, *ast.CallExpr:
								name = dataOf(funcs, nil, r)
							}
						}
					}
				}
			case *ast.ValueSpec:
				for _, id := range n.Names {
					if id.Name == e.Name && n.Type != nil && name == "" {
						name = contractName(n.Type)
					}
				}
			case *ast.Field:
				for _, id := range n.Names {
					if id.Name == e.Name && name == "" {
						name = contractName(n.Type)
					}
				}
			}
			return true
		})
		return name
	}
	return ""
}

// payloadParam names the payload of a handler: its first parameter of
// type *contract.D.
func payloadParam(fn *ast.FuncDecl) string {
	for _, p := range fn.Type.Params.List {
		if star, ok := p.Type.(*ast.StarExpr); ok {
			if n := contractName(star.X); n != "" {
				return n
			}
		}
	}
	return ""
}

// contractDoc finds ../shared/CONTRACT.md beside the repository (the
// team folder); worktrees may sit deeper, so each parent is tried.
func contractDoc(t *testing.T) string {
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "CONTRACT.md")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// notInContractDoc are the types the code sends that CONTRACT.md does not
// name, each a reading written down in docs/.
var notInContractDoc = map[string]string{
	TypeNominationRejected: "docs/awards.md: a refusal follows the contract's ….rejected convention",
	TypeScoreRejected:      "docs/awards.md: a refusal follows the contract's ….rejected convention",
	TypePortalsNotified:    "docs/egress.md: the reply of section 12's deliveries",
}

// TestEventsMatchContractDoc holds Events against the cn.huzhou.* names
// of CONTRACT.md: each name there is registered, and each registered type
// is there or is one of the readings of notInContractDoc (which must not
// outlive its reason).
func TestEventsMatchContractDoc(t *testing.T) {
	p := contractDoc(t)
	if p == "" {
		t.Skip("CONTRACT.md is not beside the repository (../shared/CONTRACT.md)")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	inDoc := map[string]bool{}
	for _, m := range regexp.MustCompile(`cn\.huzhou\.[a-z]+(?:\.[a-z]+)*`).FindAllString(string(b), -1) {
		inDoc[m] = true
	}
	var missing []string
	for name := range inDoc {
		if _, ok := DataOf(name); !ok {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("%s names %s, which Events does not list", p, name)
	}
	for _, e := range Events {
		_, reading := notInContractDoc[e.Type]
		switch {
		case !inDoc[e.Type] && !reading:
			t.Errorf("%s is not in %s: name it there, or add it to notInContractDoc with the doc that explains it", e.Type, p)
		case inDoc[e.Type] && reading:
			t.Errorf("%s is in %s now: drop it from notInContractDoc", e.Type, p)
		}
	}
	if len(inDoc) < 40 {
		t.Fatalf("found only %d event types in %s", len(inDoc), p)
	}
}
