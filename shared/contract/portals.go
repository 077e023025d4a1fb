package contract

// TypePortalsNotified is webhook-egress's reply to every event it sends on
// to the portals (EgressTypes): where the event went. The contract does not
// name it; it follows its convention for replies (docs/egress.md).
const TypePortalsNotified = "cn.huzhou.portals.notified"

// PortalsNotified is the data of portals.notified.
type PortalsNotified struct {
	WebhookID  string           `json:"webhookId"`
	Type       string           `json:"type"`
	Rule       string           `json:"rule"`
	Deliveries []DeliveryResult `json:"deliveries"`
}

// DeliveryResult is one portal's outcome in portals.notified.
type DeliveryResult struct {
	Portal     string `json:"portal"`
	Status     string `json:"status"`
	HTTPStatus *int   `json:"httpStatus"`
}
