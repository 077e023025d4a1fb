package main

import (
	"testing"

	"github.com/qinqing/qinqing/shared/appeal"
)

// A rule's own service fields win over the defaults derived from its
// category.
func TestServiceFromRule(t *testing.T) {
	t.Parallel()
	got := service(appeal.Rule{Category: "Land", Department: "natural-resources", Name: "Land use",
		Description: "Certificates", Keywords: []string{"land", "用地"}, Group: "planning"})
	want := Service{ServiceCode: "land", ServiceName: "Land use", Description: "Certificates", Type: "realtime",
		Keywords: "land,用地", Group: "planning"}
	if got != want {
		t.Fatalf("service = %+v, want %+v", got, want)
	}
	def := service(appeal.Rule{Category: "tax", Department: "tax"})
	if def.ServiceName != appeal.CategoryName("tax") || def.Keywords != "tax,"+appeal.CategoryName("tax") || def.Description == "" || def.Group != "" {
		t.Fatalf("default service = %+v", def)
	}
}
