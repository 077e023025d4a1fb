package contract

import (
	"time"

	"github.com/qinqing/qinqing/shared/appeal"
)

// Event types of deadline-check (contract section 5 and the monthly
// review). Its jobs arrive as PingSource events (event.PingType).
const (
	TypeAppealOverdue          = "cn.huzhou.appeal.overdue"
	TypeDeadlineCheckCompleted = "cn.huzhou.deadline.check.completed"
	TypeReviewPublished        = "cn.huzhou.review.published"
)

// OverdueAnnounced is the data of appeal.overdue.
type OverdueAnnounced struct {
	AppealID           string       `json:"appealId"`
	Stage              appeal.Stage `json:"stage"`
	Level              appeal.Level `json:"level"`
	Department         string       `json:"department"`
	DueAt              time.Time    `json:"dueAt"`
	WorkingDaysOverdue int          `json:"workingDaysOverdue"`
}

// CheckCompleted is the data of deadline.check.completed. Overdue counts
// what is past its due time as of the check (announced now or before);
// Announced is how many overdue follow-ups this check queued.
type CheckCompleted struct {
	AsOf      time.Time     `json:"asOf"`
	Overdue   OverdueCounts `json:"overdue"`
	Announced int           `json:"announced"`
}

// OverdueCounts counts the overdue items per kind.
type OverdueCounts struct {
	Assign  int `json:"assign"`
	Reply   int `json:"reply"`
	Revisit int `json:"revisit"`
	Payment int `json:"payment"`
}

// ReviewPublished is the data of review.published: the month's headline
// figures and the keys of review.json and review.html in the bucket.
type ReviewPublished struct {
	Period             string          `json:"period"`
	Received           int             `json:"received"`
	AssignedOnTimeRate float64         `json:"assignedOnTimeRate"`
	RepliedOnTimeRate  float64         `json:"repliedOnTimeRate"`
	RevisitRate        float64         `json:"revisitRate"`
	SatisfactionRate   float64         `json:"satisfactionRate"`
	TopCategories      []CategoryCount `json:"topCategories"`
	Keys               []string        `json:"keys"`
}

// CategoryCount is one of the most frequent categories (common problems).
type CategoryCount struct {
	Category string `json:"category"`
	Count    int    `json:"count"`
}
