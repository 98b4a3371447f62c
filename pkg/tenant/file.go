package tenant

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is the content of tenants/<slug>/tenant.yaml: the commune's Settings,
// its logo read from the file the YAML names, and its template overrides
// (tenants/<slug>/templates/*.html, which stay file-based).
type File struct {
	Settings `yaml:",inline"`

	// Loaded from the folder, not from YAML.
	Path      string
	dir       string
	overrides map[string]string
}

// LoadDir reads every <dir>/<slug>/tenant.yaml and validates each file and
// the set (a host used twice, a slug used twice). All problems are returned.
func LoadDir(dir string) ([]*File, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", "tenant.yaml"))
	if err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("tenant: no tenant.yaml found under %s", dir)
	}
	sort.Strings(paths)
	var files []*File
	var errs []error
	hostOwner := map[string]string{}
	numcliOwner := map[string]string{}
	for _, p := range paths {
		f, err := LoadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, h := range f.AllHosts() {
			if other, ok := hostOwner[h]; ok {
				errs = append(errs, &FieldError{p, "hosts", fmt.Sprintf("host %q is already used by %s", h, other)})
			}
			hostOwner[h] = p
		}
		if other, ok := numcliOwner[f.PayFiP.Numcli]; ok {
			// Two communes may share a collectivity id only by mistake.
			errs = append(errs, &FieldError{p, "payfip.numcli", fmt.Sprintf("numcli %q is already used by %s", f.PayFiP.Numcli, other)})
		}
		numcliOwner[f.PayFiP.Numcli] = p
		files = append(files, f)
	}
	return files, errors.Join(errs...)
}

// LoadFile reads and validates one tenant.yaml and the files it names.
func LoadFile(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	f := &File{Settings: DefaultSettings(), Path: path, dir: filepath.Dir(path)}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	f.fillDefaults()
	if err := f.loadAssets(path); err != nil {
		return nil, err
	}
	var errs []error
	if dirSlug := filepath.Base(f.dir); f.Slug != "" && f.Slug != dirSlug && slugRe.MatchString(f.Slug) {
		errs = append(errs, &FieldError{Field: "slug", Problem: fmt.Sprintf("%q must match its folder name %q", f.Slug, dirSlug)})
	}
	errs = append(errs, f.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, inFile(path, err)
	}
	return f, nil
}

// inFile names path in every FieldError of err.
func inFile(path string, err error) error {
	var out []error
	for _, fe := range FieldErrors(err) {
		out = append(out, &FieldError{File: path, Field: fe.Field, Problem: fe.Problem})
	}
	if len(out) == 0 {
		return fmt.Errorf("%s: %w", path, err)
	}
	return errors.Join(out...)
}

func (f *File) loadAssets(path string) error {
	if f.Branding.Logo != "" {
		name := f.Branding.Logo
		ext := strings.ToLower(filepath.Ext(name))
		if (ext != ".svg" && ext != ".png") || filepath.Base(name) != name {
			return &FieldError{path, "branding.logo", fmt.Sprintf("%q must be a .svg or .png file in the tenant's folder", name)}
		}
		st, err := os.Stat(filepath.Join(f.dir, name))
		if err != nil {
			return &FieldError{path, "branding.logo", err.Error()}
		}
		if st.Size() > MaxLogoBytes {
			return &FieldError{path, "branding.logo", fmt.Sprintf("is %d KiB; a logo may not exceed %d KiB", st.Size()>>10, MaxLogoBytes>>10)}
		}
		b, err := os.ReadFile(filepath.Join(f.dir, name))
		if err != nil {
			return &FieldError{path, "branding.logo", err.Error()}
		}
		f.Branding.LogoData = b
	}
	f.overrides = map[string]string{}
	overrides, _ := filepath.Glob(filepath.Join(f.dir, "templates", "*.html"))
	for _, o := range overrides {
		b, err := os.ReadFile(o)
		if err != nil {
			return fmt.Errorf("%s: %w", o, err)
		}
		// Parse now: a broken override must fail `tenants check`, not the portal.
		if _, err := template.New(filepath.Base(o)).Funcs(overrideFuncs).Parse(string(b)); err != nil {
			return &FieldError{path, "templates/" + filepath.Base(o), err.Error()}
		}
		f.overrides[filepath.Base(o)] = string(b)
	}
	return nil
}

// overrideFuncs names the functions the views offer, so overrides parse.
var overrideFuncs = template.FuncMap{"date": func() string { return "" }, "lines": func() []string { return nil }}

// Overrides are the tenant's template overrides, by file name.
func (f *File) Overrides() map[string]string { return f.overrides }

// Marshal writes s as tenant.yaml, every field explicit; logoName is the
// file the logo is written to beside it ("" when there is none).
func (s Settings) Marshal(logoName string) ([]byte, error) {
	s.Branding.Logo = logoName
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("tenant: export: %w", err)
	}
	return buf.Bytes(), enc.Close()
}

// LogoFileName is the file name export gives a logo of this media type.
func LogoFileName(logoType string) string {
	if logoType == LogoPNG {
		return "logo.png"
	}
	return "logo.svg"
}
