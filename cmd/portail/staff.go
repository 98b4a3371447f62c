package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"portail/pkg/auth"
	"portail/pkg/config"
	"portail/pkg/jobs"
	"portail/pkg/mail"
	"portail/pkg/staff"
	"portail/pkg/tenant"
)

const staffUsage = `usage:
  portail staff invite  --tenant SLUG --email EMAIL --role admin|agent|viewer [--name NAME]
  portail staff list    --tenant SLUG
  portail staff disable --tenant SLUG --email EMAIL`

// runStaff manages a commune's staff from the command line, through the
// same service as the "Équipe" screen: a commune can be given its first
// administrator without any console. The invitation email is sent by the
// portal's job workers (a running `portail serve`); its link is printed too.
func runStaff(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(staffUsage)
	}
	fs := flag.NewFlagSet("staff "+args[0], flag.ContinueOnError)
	slug := fs.String("tenant", "", "commune (slug)")
	email := fs.String("email", "", "the staff member's email")
	role := fs.String("role", "", "admin, agent or viewer")
	name := fs.String("name", "", "the staff member's name (a suggestion they may change)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *slug == "" || fs.NArg() > 0 {
		return errors.New(staffUsage)
	}
	d, err := openDB(ctx, cfg, 2)
	if err != nil {
		return err
	}
	defer d.Close()
	t, err := tenant.NewStore(d).BySlug(ctx, *slug)
	if err != nil {
		return fmt.Errorf("commune %q: %w", *slug, err)
	}
	queue, err := jobs.New(d, jobs.Options{Logger: log}) // inserts only: the portal's workers send
	if err != nil {
		return err
	}
	svc := &staff.Service{DB: d, Hasher: auth.NewHasher(1), Outbox: mail.NewOutbox(queue),
		Links: func(t *tenant.Tenant, path string) string { return cfg.HTTP.PublicBaseURL(t.PrimaryHost) + path }}

	switch args[0] {
	case "invite":
		if *email == "" || *role == "" {
			return errors.New(staffUsage)
		}
		link, err := svc.Invite(ctx, t, *email, *role, *name)
		switch {
		case errors.Is(err, staff.ErrAlreadyMember):
			return fmt.Errorf("%s is already an active member of %s", *email, t.Name)
		case errors.Is(err, staff.ErrInvalidRole):
			return fmt.Errorf("unknown role %q: admin, agent or viewer", *role)
		case err != nil:
			return err
		}
		fmt.Fprintf(out, "Invitation of %s as %s of %s, valid 72 hours, emailed with this link:\n%s\n",
			auth.NormalizeEmail(*email), *role, t.Name, link)
		return nil
	case "list":
		ms, err := svc.Members(ctx, t.ID)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "EMAIL\tNAME\tROLE\tSTATUS\tTOTP\tLAST LOGIN")
		for _, m := range ms {
			status, second, last := "active", "no", "never"
			if !m.Active() {
				status = "disabled"
			}
			if m.TOTPEnrolled {
				second = "yes"
			}
			if m.LastLoginAt != nil {
				last = m.LastLoginAt.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Email, m.Name, m.Role, status, second, last)
		}
		return w.Flush()
	case "disable":
		if *email == "" {
			return errors.New(staffUsage)
		}
		m, err := svc.MemberByEmail(ctx, t.ID, *email)
		if errors.Is(err, staff.ErrNotFound) {
			return fmt.Errorf("%s is not a member of %s", *email, t.Name)
		}
		if err != nil {
			return err
		}
		err = svc.SetMembershipActive(ctx, t, m.ID, false)
		if errors.Is(err, staff.ErrLastAdmin) {
			return fmt.Errorf("%s is the last active administrator of %s: invite another one first", m.Email, t.Name)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s can no longer work for %s; their sessions there are closed.\n", m.Email, t.Name)
		return nil
	}
	return errors.New(staffUsage)
}
