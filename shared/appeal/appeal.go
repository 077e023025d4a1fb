// Package appeal holds what appeal-router and deadline-check share about
// appeals (诉求), the problems enterprises raise through the forum, the
// portal, the hotline or a visit (contract sections 4 and 5): the
// lifecycle as a state machine, the deadline stages and the escalation
// ladder (the event types and payloads are in shared/contract). The tables live in the `appeal` schema
// (shared/postgres/migrations/0020_appeal.sql): appeal-router's own
// statements are in its store.go, the ones other functions run on them in
// store*.go here (docs/runtime.md, "Where SQL lives").
package appeal

// Working-day deadlines of the closed loop, counted from receipt (assign,
// reply), from a reply (revisit) and from an unsatisfied revisit (the new
// reply deadline).
const (
	AssignWorkingDays  = 2
	ReplyWorkingDays   = 10
	RevisitWorkingDays = 3
)

// DefaultDepartment is the business environment office (营商办), which
// triages by hand what no routing rule matches and what a department
// returns.
const DefaultDepartment = "yingshang-office"

// Status is where an appeal stands in its lifecycle.
type Status string

// The statuses of an appeal.
const (
	Assigned Status = "assigned" // handed to a department, not yet signed for (交办)
	Accepted Status = "accepted" // the department signed for it and works on it
	Replied  Status = "replied"  // answered; waiting for the follow-up visit (回访)
	Closed   Status = "closed"   // the enterprise was (basically) satisfied
)

// Action is what moves an appeal from one status to the next. The values
// are the history table's `action` column.
type Action string

// The actions of the lifecycle.
const (
	Submit  Action = "submitted"
	Accept  Action = "accepted"
	Return  Action = "returned"
	Reply   Action = "replied"
	Revisit Action = "revisited"
)

// Satisfaction is the enterprise's verdict at the follow-up visit (回访).
type Satisfaction string

// The verdicts a revisit may record.
const (
	Satisfied          Satisfaction = "satisfied"
	BasicallySatisfied Satisfaction = "basically_satisfied"
	Unsatisfied        Satisfaction = "unsatisfied"
)

// Valid reports whether s is one of the contract's verdicts.
func (s Satisfaction) Valid() bool {
	return s == Satisfied || s == BasicallySatisfied || s == Unsatisfied
}

// Next is the state machine: the status after action a from status from,
// and false when the action is not allowed there (the
// `invalid_transition` refusal).
//
//	assigned --accepted--> accepted --replied--> replied --revisited(satisfied)--> closed
//	assigned|accepted --returned--> assigned (to the business environment office)
//	replied --revisited(unsatisfied)--> accepted (reopened, new reply deadline)
//
// Who may act (the current assignee) is checked by the caller.
func Next(from Status, a Action, s Satisfaction) (Status, bool) {
	switch a {
	case Accept:
		if from == Assigned {
			return Accepted, true
		}
	case Return:
		if from == Assigned || from == Accepted {
			return Assigned, true
		}
	case Reply:
		if from == Accepted {
			return Replied, true
		}
	case Revisit:
		if from == Replied {
			if s == Unsatisfied {
				return Accepted, true
			}
			return Closed, true
		}
	}
	return from, false
}

// Stage is a deadline an appeal can miss.
type Stage string

// The deadline stages of contract section 5.
const (
	StageAssign  Stage = "assign"  // not accepted by assignDue
	StageReply   Stage = "reply"   // not replied by replyDue
	StageRevisit Stage = "revisit" // not revisited by revisitDue
)

// Level is a rung of the escalation ladder.
type Level string

// The escalation ladder, by working days overdue.
const (
	Reminder    Level = "reminder"    // 0 or more: a reminder to the department
	Supervision Level = "supervision" // 2 or more: the city supervision team (市监督专班)
	Exposure    Level = "exposure"    // 5 or more: the 《看见》 exposure list
)

// Ladder is each level with the working days overdue from which it applies.
var Ladder = []struct {
	Level Level
	From  int
}{{Reminder, 0}, {Supervision, 2}, {Exposure, 5}}

// LevelsFor returns every level reached at workingDaysOverdue, lowest
// first: a check that finds an appeal already past several levels
// announces each of them. Negative values (not overdue) reach none.
func LevelsFor(workingDaysOverdue int) []Level {
	var out []Level
	for _, l := range Ladder {
		if workingDaysOverdue >= l.From {
			out = append(out, l.Level)
		}
	}
	return out
}

// OverdueKey is the business identity of an announcement: the
// runtime.Outgoing key of its cn.huzhou.appeal.overdue follow-up, so each
// (appeal, stage, level) is announced once.
func OverdueKey(appealID string, s Stage, l Level) string {
	return "overdue/" + appealID + "/" + string(s) + "/" + string(l)
}

// DepartmentNames are the Chinese names of the departments of the
// built-in routing table, for documents. Codes not listed are shown as
// they are.
var DepartmentNames = map[string]string{
	DefaultDepartment:              "市营商环境建设办公室",
	"natural-resources":            "市自然资源和规划局",
	"wuxing-natural-resources":     "吴兴区自然资源和规划分局",
	"nanxun-natural-resources":     "南浔区自然资源和规划分局",
	"deqing-natural-resources":     "德清县自然资源和规划局",
	"changxing-natural-resources":  "长兴县自然资源和规划局",
	"anji-natural-resources":       "安吉县自然资源和规划局",
	"housing-construction":         "市住房和城乡建设局",
	"financial-work":               "市委金融办",
	"tax":                          "国家税务总局湖州市税务局",
	"power-supply":                 "国网湖州供电公司",
	"development-reform":           "市发展和改革委员会",
	"economy-information":          "市经济和信息化局",
	"human-resources":              "市人力资源和社会保障局",
	"market-supervision":           "市市场监督管理局",
	"wuxing-market-supervision":    "吴兴区市场监督管理局",
	"nanxun-market-supervision":    "南浔区市场监督管理局",
	"deqing-market-supervision":    "德清县市场监督管理局",
	"changxing-market-supervision": "长兴县市场监督管理局",
	"anji-market-supervision":      "安吉县市场监督管理局",
	"ecology-environment":          "市生态环境局",
	"transport":                    "市交通运输局",
	"commerce":                     "市商务局",
	"science-technology":           "市科学技术局",
	"water-resources":              "市水利局",
	"emergency-management":         "市应急管理局",
	"justice":                      "市司法局",
	"data-bureau":                  "市数据局",
}

// CategoryNames are the Chinese names of the built-in table's categories
// (the common problems of the monthly review).
var CategoryNames = map[string]string{
	"land": "用地", "planning": "规划", "construction": "工程建设", "finance": "融资",
	"tax": "税费", "energy": "用电用能", "project": "项目推进", "policy": "惠企政策",
	"talent": "人才", "employment": "用工", "market": "市场准入", "licensing": "审批许可",
	"environment": "生态环保", "transport": "交通物流", "trade": "商贸外贸", "technology": "科技创新",
	"water": "水利", "safety": "安全生产", "legal": "法律服务", "data": "数据",
}

// ChannelNames are the Chinese names of the channels an appeal arrives by.
var ChannelNames = map[string]string{
	"forum": "政企恳谈会", "portal": "网上平台", "hotline": "服务热线", "visit": "走访来访",
}

// CategoryName is the Chinese name of a category, "未分类" for none, or
// the category as given.
func CategoryName(c string) string {
	if c == "" {
		return "未分类"
	}
	if n, ok := CategoryNames[c]; ok {
		return n
	}
	return c
}

// DepartmentName is the Chinese name of a department code, or the code.
func DepartmentName(code string) string {
	if n, ok := DepartmentNames[code]; ok {
		return n
	}
	return code
}
