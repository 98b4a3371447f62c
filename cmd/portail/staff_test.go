package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"portail/pkg/auth"
	"portail/pkg/db"
	"portail/pkg/mail"
	"portail/pkg/staff"
	"portail/pkg/tenant"
)

func TestStaffCommands(t *testing.T) {
	cfg := importEnv(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runStaff(ctx, cfg, log, args, &out)
		return out.String(), err
	}
	d, err := db.Open(ctx, cfg.Database.URL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sistec, err := tenant.NewStore(d).BySlug(ctx, "sistec")
	if err != nil {
		t.Fatal(err)
	}

	out, err := run("invite", "--tenant", "sistec", "--email", "Premier.Admin@Sistec.fr", "--role", "admin", "--name", "Premier Admin")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "premier.admin@sistec.fr as admin of MAIRIE DE SISTEC") ||
		!strings.Contains(out, cfg.HTTP.PublicBaseURL(sistec.PrimaryHost)+"/admin/invitation/") {
		t.Fatalf("invite output:\n%s", out)
	}
	// The same link is emailed (by the portal's workers).
	var args []string
	if err := d.Select(&args, `SELECT args::text FROM river_job WHERE kind = 'send_email'`); err != nil || len(args) != 1 {
		t.Fatalf("emails enqueued: %v %v", args, err)
	}
	var sent mail.SendArgs
	json.Unmarshal([]byte(args[0]), &sent)
	link := strings.TrimSpace(out[strings.Index(out, "http"):])
	if sent.Email.To != "premier.admin@sistec.fr" || sent.Email.Template != "staff_invitation" || sent.Email.Data["Link"] != link {
		t.Fatalf("email %+v, link %q", sent.Email, link)
	}
	if _, err := run("invite", "--tenant", "sistec", "--email", "x@sistec.fr", "--role", "maire"); err == nil || !strings.Contains(err.Error(), "unknown role") {
		t.Fatalf("unknown role: %v", err)
	}
	if _, err := run("invite", "--tenant", "inconnue", "--email", "x@sistec.fr", "--role", "agent"); err == nil {
		t.Fatal("unknown commune accepted")
	}

	// The invitee accepts; list shows them, disable cuts their access.
	svc := &staff.Service{DB: d, Hasher: auth.NewHasher(1), Outbox: mail.NewOutbox(nil)}
	m, err := svc.AcceptInvitation(ctx, sistec, link[strings.LastIndex(link, "/")+1:], "Premier Admin", "Trois chats sur le toit du lavoir")
	if err != nil {
		t.Fatal(err)
	}
	agent, err := svc.CreateMember(ctx, sistec, "agent@sistec.fr", "Un Agent", "Trois chats sur le toit du lavoir", staff.RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	out, err = run("list", "--tenant", "sistec")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "premier.admin@sistec.fr") || !strings.Contains(lines[1], "admin") ||
		!strings.Contains(lines[2], "agent@sistec.fr") || !strings.Contains(lines[2], "active") {
		t.Fatalf("list:\n%s", out)
	}
	if _, err := run("disable", "--tenant", "sistec", "--email", m.Email); err == nil || !strings.Contains(err.Error(), "last active administrator") {
		t.Fatalf("disabling the last admin: %v", err)
	}
	if out, err = run("disable", "--tenant", "sistec", "--email", "AGENT@sistec.fr"); err != nil || !strings.Contains(out, "agent@sistec.fr can no longer work for MAIRIE DE SISTEC") {
		t.Fatalf("disable: %q %v", out, err)
	}
	if got, _ := svc.Member(ctx, sistec.ID, agent.ID); got.Active() {
		t.Fatal("still active")
	}
	if out, _ = run("list", "--tenant", "sistec"); !strings.Contains(out, "disabled") {
		t.Fatalf("list after disable:\n%s", out)
	}
	if _, err := run("disable", "--tenant", "belcastel", "--email", "agent@sistec.fr"); err == nil || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("another commune's member: %v", err)
	}
}
