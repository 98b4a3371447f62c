package tenant

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// groupOfField is the group a dotted field name of tenant.yaml belongs to.
func groupOfField(field string) (Group, bool) {
	top, _, _ := strings.Cut(field, ".")
	switch top {
	case "name", "service_label", "hosts":
		return GroupIdentity, true
	case "branding":
		return GroupBranding, true
	case "contact":
		return GroupContact, true
	case "texts":
		return GroupTexts, true
	case "payfip":
		return GroupPayFiP, true
	case "payments":
		return GroupPayments, true
	case "accounts":
		return GroupAccounts, true
	case "features":
		return GroupFeatures, true
	case "reminders":
		return GroupReminders, true
	}
	return "", false
}

// listFields take comma-separated values on the command line.
var listFields = map[string]bool{"hosts.aliases": true, "payfip.endpoints.callback_networks": true}

// SetField sets one field of s named as in tenant.yaml ("contact.phone",
// "payfip.numcli", "hosts.aliases=a.fr,b.fr"; "branding.logo=@logo.svg"
// reads the logo from a file) and returns its group. The value is read as
// YAML reads it, so a field takes the values tenant.yaml accepts.
func SetField(s *Settings, field, value string) (Group, error) {
	g, ok := groupOfField(field)
	if !ok {
		if field == "slug" || field == "status" {
			return "", &FieldError{Field: field, Problem: "cannot be set: the slug never changes; status changes with suspend and resume"}
		}
		return "", &FieldError{Field: field, Problem: "is not a field of tenant.yaml"}
	}
	if field == "branding.logo" {
		if value == "" {
			s.Branding.LogoData, s.Branding.LogoType = nil, ""
			return g, nil
		}
		path, ok := strings.CutPrefix(value, "@")
		if !ok {
			return "", &FieldError{Field: field, Problem: "takes @FILE (a .svg or .png file), or nothing to remove the logo"}
		}
		st, err := os.Stat(path)
		if err != nil {
			return "", &FieldError{Field: field, Problem: err.Error()}
		}
		if st.Size() > MaxLogoBytes {
			return "", &FieldError{Field: field, Problem: fmt.Sprintf("is %d KiB; a logo may not exceed %d KiB", st.Size()>>10, MaxLogoBytes>>10)}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", &FieldError{Field: field, Problem: err.Error()}
		}
		s.Branding.LogoData = b
		return g, nil
	}
	leaf := &yaml.Node{Kind: yaml.ScalarNode, Value: value}
	if value == "" {
		leaf.Tag, leaf.Style = "!!str", yaml.DoubleQuotedStyle
	}
	if listFields[field] {
		leaf = &yaml.Node{Kind: yaml.SequenceNode}
		for _, v := range strings.Split(value, ",") {
			if v = strings.TrimSpace(v); v != "" {
				leaf.Content = append(leaf.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
			}
		}
	}
	parts := strings.Split(field, ".")
	node := leaf
	for i := len(parts) - 1; i >= 0; i-- {
		node = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: parts[i]}, node}}
	}
	doc, err := yaml.Marshal(node)
	if err != nil {
		return "", &FieldError{Field: field, Problem: err.Error()}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		return "", &FieldError{Field: field, Problem: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	return g, nil
}
