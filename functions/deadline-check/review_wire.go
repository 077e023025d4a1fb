package main

// ReviewPublished is the data of cn.huzhou.review.published.
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
