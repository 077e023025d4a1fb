package functest

import (
	"debug/elf"
	"testing"
)

// reflectMethodLookups are the reflect functions that find a method by
// index or name at run time. Once one of them is reachable the linker
// can no longer drop unused exported methods and keeps them all: with
// the AWS SDK linked, ~11 MB more binary, a slower start and a larger
// resident set. html/template and text/template execution reach them.
var reflectMethodLookups = []string{
	"reflect.Value.Method", "reflect.Value.MethodByName",
	"reflect.(*rtype).Method", "reflect.(*rtype).MethodByName",
}

// NoReflectMethodLookups fails t if the built binary bin links one of
// reflectMethodLookups (docs/runtime.md, "Documents without templates").
func NoReflectMethodLookups(t testing.TB, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("%s: %v (built without symbols?)", bin, err)
	}
	linked := map[string]bool{}
	for _, s := range syms {
		linked[s.Name] = true
	}
	if !linked["main.main"] {
		t.Fatalf("%s: no main.main among %d symbols", bin, len(syms))
	}
	for _, name := range reflectMethodLookups {
		if linked[name] {
			t.Errorf("%s links %s: the linker keeps every exported method (html/template or text/template execution?)", bin, name)
		}
	}
}
