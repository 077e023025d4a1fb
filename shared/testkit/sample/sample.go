// Package sample holds factories of valid, typed event payloads of the
// contract (shared/contract) for tests: one factory per payload, a number
// n making each enterprise its own (event.SampleUSCC(n), the one USCC
// factory), the rest plausible Huzhou data a test changes field by field.
// Tests that call handlers directly (functest.OnTx) use them; the HTTP
// contract tests keep their JSON maps where they send what a typed
// payload cannot (mistyped fields, missing members).
package sample

import (
	"encoding/json"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/recycling"
)

// Forum is a forum on 2 December 2026 whose signups close on 1 December at
// 17:00 in Huzhou, with capacity seats, reserved of them for nominated
// enterprises.
func Forum(id string, capacity, reserved int) *contract.ForumScheduled {
	return &contract.ForumScheduled{ForumID: id, Date: "2026-12-02", Theme: "数字经济企业座谈", HostLeader: "市长", Venue: "市民中心",
		County: "city", Capacity: capacity, ReservedForNominated: reserved, SignupDeadline: "2026-12-01T17:00:00+08:00"}
}

// Signup is enterprise n's request for a seat at the forum, in mode
// (contract.ModeSelf or contract.ModeNominated, then nominated by the
// city's economy bureau).
func Signup(forumID string, n int, mode string) *contract.SignupRequested {
	p := &contract.SignupRequested{ForumID: forumID, Mode: mode, Topic: "融资难",
		Enterprise: contract.SignupEnterprise{USCC: event.SampleUSCC(n), Name: "湖州测试企业", County: "wuxing"},
		Contact:    contract.Contact{Name: "张三", Phone: "13800000000"}}
	if mode == contract.ModeNominated {
		p.NominatedBy = "市经信局"
	}
	return p
}

// Cancel is enterprise n's withdrawal from the forum.
func Cancel(forumID string, n int) *contract.SignupCancelled {
	return &contract.SignupCancelled{ForumID: forumID, USCC: event.SampleUSCC(n)}
}

// Honour is the honour (e.g. 金象金牛, 专精特新) of year awarded to
// enterprise n.
func Honour(n int, honour string, year int) *contract.HonourAwarded {
	return &contract.HonourAwarded{USCC: event.SampleUSCC(n), EnterpriseName: "湖州测试企业", Honour: honour, Year: &year}
}

// Request is enterprise n's request for amountFen under the policy, on the
// basis basisID.
func Request(policyID string, n int, basisID string, amountFen int64) *contract.SubsidyRequested {
	return &contract.SubsidyRequested{PolicyID: policyID, USCC: event.SampleUSCC(n), BasisID: basisID, AmountFen: &amountFen}
}

// Licence is the collector's licence no, valid through 2026–2027, with
// capacityKg (a JSON number or a decimal string, e.g. `"100.500"`) as its
// annual capacity.
func Licence(no, collector, capacityKg string) *contract.LicenceRegistered {
	p := &contract.LicenceRegistered{LicenceNo: no, ValidFrom: "2026-01-01", ValidTo: "2027-12-31", AnnualCapacityKg: json.RawMessage(capacityKg)}
	p.Collector.USCC, p.Collector.Name = collector, "长兴回收"
	return p
}

// Trade is a trade on manifest HW-<id> of one battery set of weightKg
// from a Changxing garage, taken by the collector under the licence at
// occurredAt (RFC 3339).
func Trade(id, collector, licenceNo, weightKg, occurredAt string) *contract.TradeRecorded {
	amount := int64(36000)
	return &contract.TradeRecorded{TradeID: id, ManifestNo: "HW-" + id,
		Producer:  contract.Producer{USCC: event.SampleUSCC(1), Name: "长兴某汽修店", County: "changxing"},
		Collector: contract.Collector{USCC: collector, LicenceNo: licenceNo}, WasteCode: recycling.WasteCode,
		BatterySets: 1, WeightKg: weightKg, AmountFen: &amount, OccurredAt: occurredAt}
}
