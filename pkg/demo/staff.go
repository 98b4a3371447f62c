package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"portail/pkg/app"
	"portail/pkg/staff"
)

// StaffPassword is the password of every demo staff member.
const StaffPassword = "Riviere-Clocher-Lavoir-2026"

// StaffMember is a demo staff member of a commune.
type StaffMember struct {
	Email, Name, Role string
}

// StaffOf are the demo admin, agent and viewer of the commune slug. The
// admin enrols a second factor at their first login.
func StaffOf(slug string) []StaffMember {
	return []StaffMember{
		{"admin." + slug + "@demo.fr", "Claire Martin", staff.RoleAdmin},
		{"agent." + slug + "@demo.fr", "Paul Durand", staff.RoleAgent},
		{"lecteur." + slug + "@demo.fr", "Nadia Benali", staff.RoleViewer},
	}
}

// LoadStaff creates the demo staff of each commune that has no staff yet
// (so a restart, or a commune whose team was set up since, is left alone).
func LoadStaff(ctx context.Context, a *app.App, log *slog.Logger) error {
	ts, err := a.Tenants.List(ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		hasStaff, err := exists(ctx, a, `SELECT EXISTS (SELECT 1 FROM staff_memberships WHERE tenant_id = $1)`, t.ID)
		if err != nil {
			return err
		}
		if hasStaff {
			log.Info("demo staff not created: the commune has staff already", "tenant", t.Slug)
			continue
		}
		for _, m := range StaffOf(t.Slug) {
			_, err := a.Staff.CreateMember(ctx, t, m.Email, m.Name, StaffPassword, m.Role)
			if errors.Is(err, staff.ErrAlreadyMember) {
				continue // the user exists (of another commune, or left over)
			}
			if err != nil {
				return fmt.Errorf("demo: %s staff %s: %w", t.Slug, m.Email, err)
			}
		}
		log.Info("demo staff", "tenant", t.Slug)
	}
	return nil
}
