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

// nonPublic are ranges PayFiP's servers never call from on the internet:
// loopback, link-local, private (RFC 1918 and IPv6 unique local), shared
// address space (carrier-grade NAT) and "this network".
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

// NonPublic lists the networks of n that include loopback, link-local or
// private addresses (a whole-internet 0.0.0.0/0 among them). In production
// PayFiP's source networks are public: such an entry trusts, for classic
// results, machines next to the portal (the development setup's
// 127.0.0.2 on purpose).
func (n Networks) NonPublic() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range n {
		for _, q := range nonPublic {
			if p.Overlaps(q) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
