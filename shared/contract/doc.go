// Package contract is the one home of qinqing's event contracts: every
// cn.huzhou.* event type name, the Go type of its data (requests, replies
// and follow-ups, with the validation of the data a function accepts), the
// catalogue of who consumes what (Catalog), and (in the subpackage admin,
// which imports nothing of qinqing) the wire types of the operator
// endpoints that cmd/qinqing reads. The producer and every
// consumer of an event use the same struct, so a field cannot drift
// between them; Events pairs each type name with its data type, and the
// package's tests fail when a catalogued type has no data type, when a
// declared type name or data struct is registered nowhere, or when a
// registered one is used by no function.
//
// The files are per domain (forum.go, appeal.go, deadline.go, subsidy.go,
// recycling.go, award.go, portals.go; admin/admin.go); the wire contract
// itself is ../shared/CONTRACT.md beside the repository.
package contract
