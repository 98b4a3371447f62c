package tenant

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"regexp"
	"strings"
)

// Logo media types.
const (
	LogoPNG = "image/png"
	LogoSVG = "image/svg+xml"
)

// CheckLogo tells whether b may be a commune's logo and returns its media
// type: a PNG whose header decodes (at most 2048×2048), or an SVG made only
// of drawing elements, at most MaxLogoBytes either way.
//
// An SVG that holds anything able to run or fetch — a script, an event
// handler, a foreignObject, an external reference (href to another
// document, CSS url() to anything but #id, @import), a DOCTYPE or entity —
// is refused, not rewritten: the stored logo is byte for byte the file
// the operator chose, so that export gives it back and re-applying it
// changes nothing, and a refusal names what to remove.
func CheckLogo(b []byte) (string, error) {
	if len(b) > MaxLogoBytes {
		return "", fmt.Errorf("is %d KiB; a logo may not exceed %d KiB", len(b)>>10, MaxLogoBytes>>10)
	}
	if bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return "", fmt.Errorf("is not a valid PNG image: %v", err)
		}
		if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > 2048 || cfg.Height > 2048 {
			return "", fmt.Errorf("is a %d×%d PNG; at most 2048×2048 pixels", cfg.Width, cfg.Height)
		}
		return LogoPNG, nil
	}
	if err := checkSVG(b); err != nil {
		return "", err
	}
	return LogoSVG, nil
}

const (
	svgNS   = "http://www.w3.org/2000/svg"
	xlinkNS = "http://www.w3.org/1999/xlink"
	xmlNS   = "http://www.w3.org/XML/1998/namespace"
)

// svgElements are the elements a logo may use: shapes, text, groups,
// gradients, clipping. Everything else (script, foreignObject, image, a,
// animate, set, iframe…) is refused.
var svgElements = map[string]bool{
	"svg": true, "g": true, "defs": true, "title": true, "desc": true, "metadata": false,
	"path": true, "rect": true, "circle": true, "ellipse": true, "line": true, "polyline": true, "polygon": true,
	"text": true, "tspan": true, "use": true, "symbol": true, "style": true,
	"linearGradient": true, "radialGradient": true, "stop": true, "clipPath": true, "mask": true, "pattern": true,
}

// cssURLRe finds url(…) references in CSS or presentation attributes;
// only local ones (url(#id)) are allowed.
var cssURLRe = regexp.MustCompile(`(?i)url\s*\(\s*['"]?\s*([^'")\s]*)`)

// dangerousCSS are CSS constructs that fetch or run something.
var dangerousCSS = []string{"@import", "expression(", "javascript:", "behavior:", "-moz-binding"}

func checkCSS(where, css string) error {
	lower := strings.ToLower(css)
	for _, d := range dangerousCSS {
		if strings.Contains(lower, d) {
			return fmt.Errorf("SVG: %s holds %q, which is not allowed", where, d)
		}
	}
	for _, m := range cssURLRe.FindAllStringSubmatch(css, -1) {
		if !strings.HasPrefix(m[1], "#") {
			return fmt.Errorf("SVG: %s refers to an external resource (url(%s)); only url(#id) is allowed", where, m[1])
		}
	}
	return nil
}

func checkSVG(b []byte) error {
	if !bytes.Contains(b, []byte("<svg")) {
		return errors.New("must be a PNG or an SVG image")
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	depth, inStyle := 0, false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("is not a well-formed SVG: %v", err)
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" {
				return fmt.Errorf("SVG: processing instruction <?%s?> is not allowed", t.Target)
			}
		case xml.Directive:
			return errors.New("SVG: a DOCTYPE or entity declaration is not allowed")
		case xml.StartElement:
			name := t.Name.Local
			if depth == 0 && (name != "svg" || t.Name.Space != svgNS) {
				return errors.New(`SVG: the root element must be <svg xmlns="http://www.w3.org/2000/svg">`)
			}
			if t.Name.Space != svgNS || !svgElements[name] {
				return fmt.Errorf("SVG: element <%s> is not allowed in a logo", name)
			}
			for _, a := range t.Attr {
				if err := checkSVGAttr(name, a); err != nil {
					return err
				}
			}
			inStyle = name == "style"
			depth++
		case xml.EndElement:
			depth--
			inStyle = false
		case xml.CharData:
			if inStyle {
				if err := checkCSS("<style>", string(t)); err != nil {
					return err
				}
			}
		}
	}
	if depth != 0 {
		return errors.New("is not a well-formed SVG")
	}
	return nil
}

func checkSVGAttr(elem string, a xml.Attr) error {
	name := a.Name.Local
	switch a.Name.Space {
	case "", svgNS:
	case xlinkNS:
		if name != "href" && name != "title" {
			return fmt.Errorf("SVG: attribute xlink:%s is not allowed", name)
		}
	case xmlNS:
		return nil // xml:space, xml:lang
	case "xmlns":
		return nil // namespace declarations
	default:
		return fmt.Errorf("SVG: attribute %s:%s of <%s> is not allowed", a.Name.Space, name, elem)
	}
	if name == "xmlns" {
		return nil
	}
	lname := strings.ToLower(name)
	if strings.HasPrefix(lname, "on") {
		return fmt.Errorf("SVG: event handler %s on <%s> is not allowed", name, elem)
	}
	if lname == "href" {
		if !strings.HasPrefix(strings.TrimSpace(a.Value), "#") {
			return fmt.Errorf("SVG: <%s> refers to %q; only references inside the logo (#id) are allowed", elem, a.Value)
		}
		return nil
	}
	lv := strings.ToLower(a.Value)
	if strings.Contains(lv, "javascript:") || strings.Contains(lv, "data:") {
		return fmt.Errorf("SVG: attribute %s of <%s> holds a URL, which is not allowed", name, elem)
	}
	return checkCSS(fmt.Sprintf("attribute %s of <%s>", name, elem), a.Value)
}
