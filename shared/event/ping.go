package event

// PingType is the CloudEvents type of Knative PingSource events. Cron jobs
// arrive with this type and data {"job": "<name>"}. The cn.huzhou.* types
// and the catalogue of who consumes what are in shared/contract.
const PingType = "dev.knative.sources.ping"
