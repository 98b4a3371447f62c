package payment

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"portail/pkg/audit"
	"portail/pkg/payfip"
	"portail/pkg/tenant"
)

// ClassicCall is one request received on urlcl, the classic return URL:
// PayFiP's server-side call or a browser (the payer's, or anyone's).
type ClassicCall struct {
	// Params are the query and form parameters as received.
	Params url.Values
	// From is the client address as the server computes it: the direct
	// peer, or X-Forwarded-For when the peer is a trusted proxy.
	From netip.Addr
	// AccountID is the resident whose session came with the request, 0
	// without one. It is only recorded: it never makes a result trusted.
	AccountID int64
}

// IsClassicResult tells a result from a request that only names an attempt
// (refdet alone, in any case) to show its state. Anything more is taken for
// a result, even one too malformed to read, so that it is recorded.
func IsClassicResult(params url.Values) bool {
	for k := range params {
		if !strings.EqualFold(k, "refdet") {
			return true
		}
	}
	return false
}

// ReceiveClassic handles a classic result received on urlcl. The classic
// protocol is unsigned and the payer sees every parameter, so no check on
// the parameters can authenticate a result: it is applied (as ApplyResult
// did: match with the pending attempt, one transition wins, replays are
// no-ops) only when it comes from PayFiP's networks for t (FromPayFiP).
//
// A result from anywhere else changes nothing: it is recorded in the audit
// log (payment.classic_result_unverified: source address, parameters
// bounded in size, and the attempt its refdet names, if any) and
// ErrUnverifiedSource is returned. A result from PayFiP that cannot be read
// is ErrBadResult.
func (s *Service) ReceiveClassic(ctx context.Context, t *tenant.Tenant, call ClassicCall) (*Attempt, bool, error) {
	if t == nil {
		return nil, false, errors.New("payment: classic result: no tenant")
	}
	res, parseErr := payfip.ParseClassicCallback(call.Params)
	if !s.FromPayFiP(t, call.From) {
		s.Metrics.PayFiPResultReceived("unverified")
		return nil, false, s.recordUnverified(ctx, t, call, res, parseErr)
	}
	s.Metrics.PayFiPResultReceived(SourceCallback)
	if parseErr != nil {
		s.log().Warn("payment: unreadable classic result from PayFiP", "tenant", t.Slug, "ip", call.From, "error", parseErr)
		params, _ := boundedParams(call.Params)
		details := map[string]any{"source": SourceCallback, "reason": "unreadable",
			"error": bounded(parseErr.Error(), maxAuditValue), "params": params}
		if err := audit.Record(from(ctx, audit.KindSystem, 0, call.From), s.DB, t.ID, "payment.result_rejected", audit.Object{}, details); err != nil {
			return nil, false, errors.Join(fmt.Errorf("%w: %v", ErrBadResult, parseErr), err)
		}
		return nil, false, fmt.Errorf("%w: %v", ErrBadResult, parseErr)
	}
	return s.apply(ctx, t, res, SourceCallback, false)
}

// FromPayFiP reports whether addr is one of PayFiP's source networks for
// t: the commune's own list when it has one (its own PayFiP endpoints),
// else the deployment's payfip.callback_networks. An empty list trusts
// nobody.
func (s *Service) FromPayFiP(t *tenant.Tenant, addr netip.Addr) bool {
	nets, err := payfip.ParseNetworks(s.CallbackNetworks(t))
	if err != nil {
		// Validated when loaded; a bad entry never widens the trust.
		s.log().Error("payment: invalid PayFiP callback networks", "tenant", t.Slug, "error", err)
	}
	return nets.Contains(addr)
}

// CallbackNetworks is the list FromPayFiP uses for t.
func (s *Service) CallbackNetworks(t *tenant.Tenant) []string {
	if len(t.PayFiPCallbackNetworks) > 0 {
		return t.PayFiPCallbackNetworks
	}
	return s.Config.CallbackNetworks
}

// CheckClassicNetworks names every active classic-mode commune of ts whose
// PayFiP callback networks are empty: PayFiP's results for them could
// never be applied (`portail serve` refuses to start).
func (s *Service) CheckClassicNetworks(ts []*tenant.Tenant) error {
	var errs []error
	for _, t := range ts {
		if t.Active() && t.PayFiPMode == string(payfip.ModeClassic) && len(s.CallbackNetworks(t)) == 0 {
			errs = append(errs, fmt.Errorf("commune %s uses PayFiP classic mode but payfip.callback_networks is empty "+
				"(PayFiP's source networks; or payfip.endpoints.callback_networks in its tenant.yaml; "+
				"web-service mode is recommended)", t.Slug))
		}
	}
	return errors.Join(errs...)
}

// NetworkWarning is a list of PayFiP callback networks holding addresses
// that are not public (see payfip.Networks.NonPublic).
type NetworkWarning struct {
	Where    string   // the setting: the deployment's, or a commune's own
	Networks []string // its entries that are not public
}

// NonPublicCallbackNetworks finds loopback, link-local and private ranges
// in the deployment's payfip.callback_networks and in each active commune's
// own list: in production they must be PayFiP's public networks, and such
// an entry lets machines near the portal post classic results (`portail
// serve` warns; the development setup uses 127.0.0.2 on purpose).
func (s *Service) NonPublicCallbackNetworks(ts []*tenant.Tenant) []NetworkWarning {
	var out []NetworkWarning
	check := func(where string, list []string) {
		nets, _ := payfip.ParseNetworks(list) // validated when loaded; a bad entry is left out
		if bad := nets.NonPublic(); len(bad) > 0 {
			w := NetworkWarning{Where: where}
			for _, p := range bad {
				w.Networks = append(w.Networks, p.String())
			}
			out = append(out, w)
		}
	}
	check("payfip.callback_networks", s.Config.CallbackNetworks)
	for _, t := range ts {
		if t.Active() && len(t.PayFiPCallbackNetworks) > 0 {
			check("commune "+t.Slug+" (payfip.endpoints.callback_networks)", t.PayFiPCallbackNetworks)
		}
	}
	return out
}

// recordUnverified audits a classic result that did not come from PayFiP.
// Staff find it by the attempt (payment_id) its refdet names, if any.
func (s *Service) recordUnverified(ctx context.Context, t *tenant.Tenant, call ClassicCall, res payfip.Result, parseErr error) error {
	params, dropped := boundedParams(call.Params)
	details := map[string]any{"params": params}
	if dropped > 0 {
		details["params_dropped"] = dropped
	}
	if parseErr != nil {
		details["parse_error"] = bounded(parseErr.Error(), maxAuditValue)
	}
	logArgs := []any{"tenant", t.Slug, "ip", call.From, "resultrans", bounded(res.ResultTrans, 8)}
	if payfip.ValidRefDet(res.RefDet) {
		a, err := getAttempt(ctx, s.DB, `p.tenant_id = $1 AND p.refdet = $2`, t.ID, res.RefDet)
		switch {
		case err == nil:
			details["payment_id"], details["attempt_status"] = a.ID, a.Status
			logArgs = append(logArgs, "payment_id", a.ID, "status", a.Status)
		case !errors.Is(err, ErrNotFound):
			return err
		}
	}
	s.log().Warn("payment: classic result from outside PayFiP's networks ignored", logArgs...)
	actor := audit.KindAnonymous
	if call.AccountID != 0 {
		actor = audit.KindResident
	}
	obj := audit.Object{}
	if id, ok := details["payment_id"].(int64); ok {
		obj = paymentObject(id)
	}
	if err := audit.Record(from(ctx, actor, call.AccountID, call.From), s.DB, t.ID, "payment.classic_result_unverified", obj, details); err != nil {
		return errors.Join(ErrUnverifiedSource, err)
	}
	return ErrUnverifiedSource
}

// Bounds of what an audit row keeps of a request's parameters: enough to
// see what was claimed, never a way to fill the table.
const (
	maxAuditParams = 24
	maxAuditValues = 4
	maxAuditName   = 40
	maxAuditValue  = 256
)

// boundedParams copies at most maxAuditParams parameters (the first by
// name), each with at most maxAuditValues values, names and values cut and
// made valid UTF-8 without NUL (which jsonb refuses); dropped counts the
// parameters left out.
func boundedParams(v url.Values) (kept map[string][]string, dropped int) {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	if len(names) > maxAuditParams {
		names, dropped = names[:maxAuditParams], len(names)-maxAuditParams
	}
	out := make(map[string][]string, len(names))
	for _, k := range names {
		vals := v[k]
		if len(vals) > maxAuditValues {
			vals = vals[:maxAuditValues]
		}
		cut := make([]string, len(vals))
		for j, val := range vals {
			cut[j] = bounded(val, maxAuditValue)
		}
		out[bounded(k, maxAuditName)] = cut
	}
	return out, dropped
}

// bounded makes s valid UTF-8 without NUL and at most max bytes (cut on a
// rune boundary, "…" marking the cut).
func bounded(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
