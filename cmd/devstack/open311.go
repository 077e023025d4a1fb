package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// open311Keys are the portals' Open311 api_keys in make run (PORTALS_FILE
// apiKeys): the enterprise portal follows the case it sent by webhook, the
// hotline's case system submits one through Open311.
var open311Keys = map[string]string{
	"enterprise-portal": "dev-open311-enterprise-portal",
	"hotline-12345":     "dev-open311-hotline-12345",
}

// open311Request is what the story prints of a GeoReport v2 request.
type open311Request struct {
	ID       string `json:"service_request_id"`
	Status   string `json:"status"`
	Notes    string `json:"status_notes"`
	Code     string `json:"service_code"`
	Agency   string `json:"agency_responsible"`
	Expected string `json:"expected_datetime"`
	Address  string `json:"address"`
}

// open311Story shows the API from a case-management client's side: the
// enterprise portal lists its requests of the week (the appeal it sent as
// a webhook, with its latest step), and the hotline's case system submits a
// request through Open311 and reads it back once appeal-router has routed
// it.
func open311Story(ctx context.Context, w io.Writer, base string, client *http.Client) {
	fmt.Fprintf(w, "\nOpen311 GeoReport v2 (%s/open311/v2)\n", base)
	week := url.Values{"api_key": {open311Keys["enterprise-portal"]},
		"start_date": {"2026-11-30T00:00:00+08:00"}, "end_date": {"2026-12-07T00:00:00+08:00"}}
	var list []open311Request
	status, err := open311Get(ctx, client, base+"/open311/v2/requests.json?"+week.Encode(), &list)
	if err != nil || status != http.StatusOK {
		fmt.Fprintf(w, "  ✗ enterprise-portal: GET requests.json answered %d %v\n", status, err)
		return
	}
	fmt.Fprintf(w, "  enterprise-portal: GET requests.json (the week) → %d request(s)\n", len(list))
	for _, r := range list {
		printRequest(w, r)
	}

	form := url.Values{"api_key": {open311Keys["hotline-12345"]}, "service_code": {"energy"},
		"description":                {"工业园区周末计划停电未提前通知，影响三条生产线排产。"},
		"attribute[title]":           {"计划停电未提前通知"},
		"attribute[uscc]":            {"91330500MA2B3C4D5B"},
		"attribute[enterprise_name]": {"湖州绿能电池有限公司"},
		"attribute[county]":          {"changxing"},
		"attribute[request_token]":   {"12345-20261205-0007"},
		"phone":                      {"0572-12345"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/open311/v2/requests.json", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(w, "  ✗ hotline-12345: POST requests.json: %v\n", err)
		return
	}
	var created []open311Request
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(created) != 1 {
		fmt.Fprintf(w, "  ✗ hotline-12345: POST requests.json answered %d\n", resp.StatusCode)
		return
	}
	id := created[0].ID
	fmt.Fprintf(w, "  hotline-12345: POST requests.json (service_code energy) → 201 service_request_id %s\n", id)
	one := base + "/open311/v2/requests/" + id + ".json?" + url.Values{"api_key": {open311Keys["hotline-12345"]}}.Encode()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got []open311Request
		status, err := open311Get(ctx, client, one, &got)
		if err == nil && status == http.StatusOK && len(got) == 1 {
			fmt.Fprintf(w, "  hotline-12345: GET requests/%s.json →\n", id)
			printRequest(w, got[0])
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			fmt.Fprintf(w, "  ✗ hotline-12345: request %s not routed after 15 s (last answer %d)\n", id, status)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	var other []open311Request
	status, _ = open311Get(ctx, client, base+"/open311/v2/requests/"+id+".json?"+url.Values{"api_key": {open311Keys["enterprise-portal"]}}.Encode(), &other)
	fmt.Fprintf(w, "  enterprise-portal: GET requests/%s.json → %d (another portal's request is unknown to it)\n", id, status)
}

func printRequest(w io.Writer, r open311Request) {
	fmt.Fprintf(w, "    %s  %-6s %-10s %s · %s\n      expected %s · %s\n", r.ID, r.Status, r.Code, r.Agency, r.Address, r.Expected, r.Notes)
}

func open311Get(ctx context.Context, client *http.Client, u string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}
