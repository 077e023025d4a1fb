package main

import (
	"context"
	"fmt"
	"path"

	"github.com/jackc/pgx/v5"

	"github.com/qinqing/qinqing/shared/contract"
	"github.com/qinqing/qinqing/shared/docs"
	"github.com/qinqing/qinqing/shared/event"
	"github.com/qinqing/qinqing/shared/runtime"
)

const name = "forum-signup"

// Signup statuses (the status of signup.confirmed and signup.waitlisted,
// and of the stored signup).
const (
	StatusConfirmed  = "confirmed"
	StatusWaitlisted = "waitlisted"
	StatusCancelled  = "cancelled"
)

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
			contract.TypeForumScheduled:  runtime.On(f.schedule),
			contract.TypeSignupRequested: runtime.OnDecision(f.signup),
			contract.TypeSignupCancelled: runtime.On(f.cancel),
			event.PingType:               runtime.Jobs(map[string]runtime.Job{"forum-weekly": runtime.JobFunc(f.weekly)}),
		},
	}
}

func (f *Function) schedule(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.ForumScheduled) (runtime.Result, error) {
	fm, found, err := lockForum(ctx, tx, p.ForumID)
	if err != nil {
		return runtime.Result{}, err
	}
	if found && p.Capacity < fm.seats.total() {
		return runtime.Reply(contract.TypeForumScheduledRejected, contract.SignupRejection{ForumID: p.ForumID, Reason: "capacity_below_confirmed"}), nil
	}
	if err := upsertForum(ctx, tx, p, m.Time); err != nil {
		return runtime.Result{}, err
	}
	res := runtime.Reply(contract.TypeForumScheduledAccepted, contract.ForumScheduledAccepted{ForumID: p.ForumID})
	if found && !fm.closed {
		// More seats (or fewer reserved) may let waitlisted signups in.
		fm.capacity, fm.reserved = p.Capacity, p.ReservedForNominated
		if res.FollowUps, err = fillSeats(ctx, tx, p.ForumID, fm, m.Time); err != nil {
			return runtime.Result{}, err
		}
	}
	return res, nil
}

// signup is a signup's decision: the whole work in one statement
// (signupDecision), which takes the forum's row lock and chooses the reply
// and whether the follow-ups (an appeal for each problem raised) go; the
// signups of one forum take their turns in the process (Serial). The
// upload URLs are presigned before (no network: a signature), for the
// replies that carry them.
func (f *Function) signup(ctx context.Context, m runtime.Meta, p *contract.SignupRequested) (runtime.Decision, error) {
	signupID := runtime.DeriveID("signup", m.Source, m.ID)
	uploads, err := f.docs.PresignUploads(ctx, path.Join("forums", p.ForumID, "signups", signupID), p.Documents)
	if err != nil {
		return runtime.Decision{}, err
	}
	replies, err := encodeSignupReplies(signupID, p, uploads)
	if err != nil {
		return runtime.Decision{}, err
	}
	d := runtime.Decision{With: signupDecision, Args: decideSignup(signupID, p, m.Time, m.Source, replies),
		Serial: "forum/" + p.ForumID} // the statement locks the forum's row
	for i, pr := range p.Problems {
		appealID := fmt.Sprintf("%s-p%d", signupID, i+1)
		d.FollowUps = append(d.FollowUps, runtime.Outgoing{
			Key:  "appeal/" + appealID,
			Type: contract.TypeAppealSubmitted,
			Data: contract.AppealSubmitted{
				AppealID:   appealID,
				Enterprise: contract.AppealEnterprise{USCC: p.Enterprise.USCC, Name: p.Enterprise.Name},
				County:     p.Enterprise.County,
				Title:      pr.Title,
				Detail:     pr.Detail,
				Category:   pr.Category,
				Channel:    contract.ChannelForum,
				ForumID:    p.ForumID,
				SignupID:   signupID,
			},
		})
	}
	return d, nil
}

func (f *Function) cancel(ctx context.Context, tx pgx.Tx, m runtime.Meta, p *contract.SignupCancelled) (runtime.Result, error) {
	notRegistered := runtime.Reply(contract.TypeSignupRejected, contract.SignupRejection{ForumID: p.ForumID, USCC: p.USCC, Reason: "not_registered"})
	fm, found, err := lockForum(ctx, tx, p.ForumID)
	if err != nil || !found {
		return notRegistered, err
	}
	signupID, status, mode, err := cancelSignup(ctx, tx, p.ForumID, p.USCC, m.Time)
	if err != nil || signupID == "" {
		return notRegistered, err
	}
	switch {
	case status == StatusWaitlisted:
		fm.seats.waitlisted--
	case mode == contract.ModeSelf:
		fm.seats.self--
	default:
		fm.seats.nominated--
	}
	res := runtime.Reply(contract.TypeSignupCancelAccepted, contract.SignupCancelAccepted{SignupID: signupID})
	if res.FollowUps, err = fillSeats(ctx, tx, p.ForumID, fm, m.Time); err != nil {
		return runtime.Result{}, err
	}
	return res, nil
}
