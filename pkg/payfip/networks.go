package payfip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Networks are the source networks of PayFiP's servers. A classic result is
// unsigned and its every parameter is visible to the payer, so the only
// thing that sets PayFiP's own call to urlcl apart from a forgery is where
// it comes from.
type Networks []netip.Prefix

// ParseNetworks reads a list of CIDRs ("192.0.2.0/24", "2001:db8::/32") or
// single addresses ("192.0.2.10"). Every bad entry is reported, by its
// position in the list.
func ParseNetworks(list []string) (Networks, error) {
	var out Networks
	var errs []error
	for i, s := range list {
		p, err := parseNetwork(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, fmt.Errorf("[%d] %q is not a CIDR (192.0.2.0/24) nor an IP address", i, s))
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Contains reports whether addr lies in one of the networks. An IPv4
// address written as IPv6 (::ffff:192.0.2.10) counts as the IPv4 one.
func (n Networks) Contains(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range n {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
