package tenant

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
)

// ApplyResult says what Apply did to one tenant.
type ApplyResult struct {
	Slug    string
	Created bool
	Changed bool
	Changes []Change
}

// ApplyOptions adjust Apply.
type ApplyOptions struct {
	// Force overwrites fields changed elsewhere since the last apply.
	Force bool
}

// Conflict is a field changed elsewhere (the console, the staff, the
// command line) since the last apply, to which the YAML gives yet another
// value.
type Conflict struct {
	Slug, Field, YAML, Database string
}

// ConflictError refuses an apply that would overwrite changes made
// elsewhere; nothing was written.
type ConflictError struct {
	Conflicts []Conflict
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tenant: apply refused: %d field(s) changed elsewhere since the last apply differ from the YAML "+
		"(copy the database's value into tenant.yaml, or apply with --force to overwrite it):", len(e.Conflicts))
	for _, c := range e.Conflicts {
		fmt.Fprintf(&b, "\n  %s: %s: YAML %q → database %q", c.Slug, c.Field, c.YAML, c.Database)
	}
	return b.String()
}

// Apply creates or updates the communes described by files, in one
// transaction, through the same checks and audit as every other change.
// Per commune it keeps the values of its last apply: a field whose value
// in the database differs from the last applied one was changed elsewhere
// since, and if the YAML says something else again the apply is refused
// with a *ConflictError listing every such field (unless opt.Force).
// Applying the same files again changes nothing.
func (s *Service) Apply(ctx context.Context, files []*File, opt ApplyOptions) ([]ApplyResult, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("tenant: apply: %w", err)
	}
	defer tx.Rollback()
	var results []ApplyResult
	conflicts := &ConflictError{}
	for _, f := range files {
		r, err := s.applyOne(ctx, tx, f, opt, conflicts)
		if err != nil {
			return nil, inFile(f.Path, fmt.Errorf("tenant: apply %s: %w", f.Slug, err))
		}
		results = append(results, r)
	}
	if len(conflicts.Conflicts) > 0 {
		return nil, conflicts
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("tenant: apply: %w", err)
	}
	s.Store.Invalidate()
	return results, nil
}

// appliedFields are the fields apply compares: the settings and the
// template overrides.
func appliedFields(set *Settings, overrides map[string]string) map[string]string {
	m := set.Fields()
	m["templates"] = overridesHash(overrides)
	return m
}

func (s *Service) applyOne(ctx context.Context, tx *sqlx.Tx, f *File, opt ApplyOptions, conflicts *ConflictError) (ApplyResult, error) {
	res := ApplyResult{Slug: f.Slug}
	set := f.Settings
	set.fillDefaults()
	set.canonical()
	yaml := appliedFields(&set, f.Overrides())
	cur, err := getTenant(ctx, tx, `WHERE slug = $1 FOR UPDATE`, f.Slug)
	if err == ErrNotFound {
		id, err := s.create(ctx, tx, set, ActionApplied, yaml)
		if err != nil {
			return res, err
		}
		if err := setOverrides(ctx, tx, id, f.Overrides()); err != nil {
			return res, err
		}
		res.Created, res.Changed = true, true
		return res, nil
	}
	if err != nil {
		return res, err
	}
	curSet := cur.Settings()
	db := appliedFields(&curSet, cur.TemplateOverrides)
	var raw []byte
	if err := tx.GetContext(ctx, &raw, `SELECT last_applied FROM tenants WHERE id = $1`, cur.ID); err != nil {
		return res, err
	}
	last := db // never applied since last_applied exists: the files were the only writer
	if raw != nil {
		last = map[string]string{}
		if err := json.Unmarshal(raw, &last); err != nil {
			return res, err
		}
	}
	for _, c := range Diff(db, yaml) {
		if db[c.Field] != last[c.Field] && !opt.Force {
			conflicts.Conflicts = append(conflicts.Conflicts, Conflict{Slug: f.Slug, Field: c.Field, YAML: c.After, Database: c.Before})
		}
	}
	if len(conflicts.Conflicts) > 0 {
		return res, nil // nothing will be written: find every conflict first
	}
	changes, err := s.write(ctx, tx, cur, set, ActionApplied, nil)
	if err != nil {
		return res, err
	}
	if yaml["templates"] != db["templates"] {
		if err := setOverrides(ctx, tx, cur.ID, f.Overrides()); err != nil {
			return res, err
		}
		changes = append(changes, Change{Field: "templates", Before: db["templates"], After: yaml["templates"]})
		if len(changes) == 1 {
			if _, err := tx.ExecContext(ctx, `UPDATE tenants SET version = version + 1, updated_at = now() WHERE id = $1`, cur.ID); err != nil {
				return res, err
			}
			if err := record(ctx, tx, cur.ID, ActionApplied, cur.Version+1, changes); err != nil {
				return res, err
			}
		}
	}
	b, _ := json.Marshal(yaml)
	if _, err := tx.ExecContext(ctx, `UPDATE tenants SET last_applied = $2::jsonb WHERE id = $1`, cur.ID, string(b)); err != nil {
		return res, err
	}
	res.Changes, res.Changed = changes, len(changes) > 0
	return res, nil
}

func setOverrides(ctx context.Context, tx *sqlx.Tx, id int64, overrides map[string]string) error {
	if overrides == nil {
		overrides = map[string]string{}
	}
	b, _ := json.Marshal(overrides)
	_, err := tx.ExecContext(ctx, `UPDATE tenants SET template_overrides = $2::jsonb WHERE id = $1`, id, string(b))
	return err
}

// Apply applies files through a Service on the store's database, refusing
// conflicts (see Service.Apply).
func (s *Store) Apply(ctx context.Context, files []*File) ([]ApplyResult, error) {
	return NewService(s.db, s).Apply(ctx, files, ApplyOptions{})
}

// Export returns the commune's settings as tenant.yaml would hold them and
// its template overrides: writing them out and applying them changes
// nothing.
func (s *Store) Export(ctx context.Context, slug string) (Settings, map[string]string, error) {
	t, err := s.BySlug(ctx, slug)
	if err != nil {
		return Settings{}, nil, err
	}
	return t.Settings(), map[string]string(t.TemplateOverrides), nil
}
