package runtime

// Resumable is a stage's failure after part of its work may have been
// committed (a bulk import that stored some of its chunks). The answer is
// 503 — Knative retries, and the retry resumes — with Detail as the
// problem's detail: what is stored and that a retry resumes, instead of
// the usual "nothing was written".
type Resumable struct {
	Detail string
	Err    error
}

func (e *Resumable) Error() string { return e.Detail + ": " + e.Err.Error() }

func (e *Resumable) Unwrap() error { return e.Err }
