package main

import (
	"context"
	"fmt"
	"path"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
)

const name = "forum-signup"

// Function handles the forum's events.
type Function struct {
	docs *docs.Store
}

// New returns the function's handlers.
func New(env *runtime.Env, store *docs.Store) *runtime.Function {
	f := &Function{docs: store}
	return &runtime.Function{
		Name: name,
		Handlers: map[string]runtime.Handler{
			TypeScheduled:       runtime.On(f.schedule),
			TypeSignupRequested: runtime.On(f.signup),
			TypeSignupCancelled: runtime.On(f.cancel),
			event.PingType:      runtime.Jobs(map[string]runtime.JobFunc{"forum-weekly": f.weekly}),
		},
	}
}

// SignupReply is the data of signup.confirmed and signup.waitlisted, as a
// reply and as the follow-up announcing a promotion from the waitlist.
type SignupReply struct {
	SignupID         string        `json:"signupId"`
	ForumID          string        `json:"forumId"`
	USCC             string        `json:"uscc"`
	Status           string        `json:"status"`
	WaitlistPosition int           `json:"waitlistPosition"`
	Uploads          []docs.Upload `json:"uploads"`
}

// Rejection is the data of signup.rejected and scheduled.rejected.
type Rejection struct {
	ForumID  string `json:"forumId"`
	USCC     string `json:"uscc,omitempty"`
	Reason   string `json:"reason"`
	SignupID string `json:"signupId,omitempty"`
}

func (f *Function) schedule(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *Scheduled) (runtime.Result, error) {
	fm, found, err := lockForum(ctx, tx, p.ForumID)
	if err != nil {
		return runtime.Result{}, err
	}
	if found {
		seats, err := countSeats(ctx, tx, p.ForumID)
		if err != nil {
			return runtime.Result{}, err
		}
		if p.Capacity < seats.total() {
			return runtime.Reply(TypeScheduledRejected, Rejection{ForumID: p.ForumID, Reason: "capacity_below_confirmed"}), nil
		}
	}
	if err := upsertForum(ctx, tx, p, m.Time); err != nil {
		return runtime.Result{}, err
	}
	res := runtime.Reply(TypeScheduledAccepted, map[string]string{"forumId": p.ForumID})
	if found && !fm.closed {
		// More seats (or fewer reserved) may let waitlisted signups in.
		if res.FollowUps, err = fillSeats(ctx, tx, p.ForumID, m.Time); err != nil {
			return runtime.Result{}, err
		}
	}
	return res, nil
}

func (f *Function) signup(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *SignupRequested) (runtime.Result, error) {
	reject := func(reason, signupID string) (runtime.Result, error) {
		return runtime.Reply(TypeSignupRejected, Rejection{ForumID: p.ForumID, USCC: p.Enterprise.USCC, Reason: reason, SignupID: signupID}), nil
	}
	fm, found, err := lockForum(ctx, tx, p.ForumID)
	if err != nil {
		return runtime.Result{}, err
	}
	if !found {
		return reject("forum_not_found", "")
	}
	if fm.closed || m.Time.After(fm.deadline) {
		return reject("signup_closed", "")
	}
	if existing, err := liveSignup(ctx, tx, p.ForumID, p.Enterprise.USCC); err != nil {
		return runtime.Result{}, err
	} else if existing != "" {
		return reject("already_registered", existing)
	}
	seats, err := countSeats(ctx, tx, p.ForumID)
	if err != nil {
		return runtime.Result{}, err
	}
	status, position := StatusWaitlisted, seats.waitlisted+1
	if fm.mayTake(seats, p.Mode) {
		status, position = StatusConfirmed, 0
	}
	signupID := runtime.DeriveID("signup", m.Source, m.ID)
	uploads := make([]docs.Upload, 0, len(p.Documents))
	for i, d := range p.Documents {
		key := path.Join("forums", p.ForumID, "signups", signupID, strconv.Itoa(i+1)+"-"+d.FileName)
		u, err := f.docs.PresignPut(ctx, key, d.ContentType, d.FileName)
		if err != nil {
			return runtime.Result{}, err
		}
		uploads = append(uploads, u)
	}
	if err := insertSignup(ctx, tx, signupID, p, status, m.Time, m.Source); err != nil {
		return runtime.Result{}, err
	}
	replyType := TypeSignupConfirmed
	if status == StatusWaitlisted {
		replyType = TypeSignupWaitlisted
	}
	res := runtime.Reply(replyType, SignupReply{SignupID: signupID, ForumID: p.ForumID, USCC: p.Enterprise.USCC,
		Status: status, WaitlistPosition: position, Uploads: uploads})
	for i, pr := range p.Problems {
		appealID := fmt.Sprintf("%s-p%d", signupID, i+1)
		res.FollowUps = append(res.FollowUps, runtime.Outgoing{
			Key:  "appeal/" + appealID,
			Type: TypeAppealSubmitted,
			Data: map[string]any{
				"appealId":   appealID,
				"enterprise": map[string]string{"uscc": p.Enterprise.USCC, "name": p.Enterprise.Name},
				"county":     p.Enterprise.County,
				"title":      pr.Title,
				"detail":     pr.Detail,
				"category":   pr.Category,
				"channel":    "forum",
				"forumId":    p.ForumID,
				"signupId":   signupID,
			},
		})
	}
	return res, nil
}

func (f *Function) cancel(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *SignupCancelled) (runtime.Result, error) {
	notRegistered := runtime.Reply(TypeSignupRejected, Rejection{ForumID: p.ForumID, USCC: p.USCC, Reason: "not_registered"})
	if _, found, err := lockForum(ctx, tx, p.ForumID); err != nil || !found {
		return notRegistered, err
	}
	signupID, err := cancelSignup(ctx, tx, p.ForumID, p.USCC, m.Time)
	if err != nil || signupID == "" {
		return notRegistered, err
	}
	res := runtime.Reply(TypeCancelAccepted, map[string]string{"signupId": signupID})
	if res.FollowUps, err = fillSeats(ctx, tx, p.ForumID, m.Time); err != nil {
		return runtime.Result{}, err
	}
	return res, nil
}
