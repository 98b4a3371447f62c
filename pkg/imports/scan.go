package imports

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"unicode/utf8"
)

// Encodings the import reads.
const (
	EncodingUTF8        = "UTF-8"
	EncodingWindows1252 = "Windows-1252"
)

// errRefused stops reading a file the scanner has refused: its reason is in
// scanner.problem.
var errRefused = errors.New("imports: file refused")

// scanner is the first pass over an uploaded CSV file, fed as it streams
// to its staging copy (it is an io.Writer). It hashes the bytes, counts the
// lines, bounds their length and decides the encoding: UTF-8 (with or
// without BOM) when every byte sequence is valid UTF-8, else Windows-1252.
// It refuses what is no CSV text at all (binary, UTF-16, spreadsheet, PDF),
// files mixing UTF-8 with another encoding (they would import garbled
// accents), and files over the limits. It holds no line: memory is the
// same whatever the file.
//
// A refusal is final as soon as it is known: Write then returns errRefused,
// so the caller stops reading (and storing) the file.
type scanner struct {
	maxBytes int64
	maxLine  int
	maxLines int // records; 0 = no limit

	h        hash.Hash
	size     int64
	head     []byte // the first bytes, for file signatures
	line     int    // current physical line, 1-based
	lineLen  int
	lines    int  // lines holding anything but line breaks
	content  bool // the current line holds something
	hasQuote bool // a '"' anywhere: lines and records may then differ

	carry                                       []byte // an incomplete UTF-8 sequence at the end of the last write
	multibyte, invalid, undefined1252, crs, lfs int

	problem string // French reason of a refusal
}

func newScanner(l Limits) *scanner {
	return &scanner{maxBytes: l.MaxFileBytes, maxLine: l.MaxLineBytes, maxLines: l.MaxLines,
		h: sha256.New(), line: 1, carry: make([]byte, 0, utf8.UTFMax)}
}

func (s *scanner) refuse(reason string) error {
	s.problem = reason
	return errRefused
}

// Write scans the next bytes of the file.
func (s *scanner) Write(p []byte) (int, error) {
	if s.problem != "" {
		return 0, errRefused
	}
	n := len(p)
	// The first bytes wait for the file's signature to be known.
	if len(s.head) < 5 {
		take := min(len(p), 5-len(s.head))
		s.head, p = append(s.head, p[:take]...), p[take:]
		if len(s.head) < 5 {
			return n, nil
		}
		if err := s.start(); err != nil {
			return 0, err
		}
	}
	if err := s.scan(p); err != nil {
		return 0, err
	}
	return n, nil
}

// start checks the signature, then scans the first bytes.
func (s *scanner) start() error {
	if reason := signatureProblem(s.head); reason != "" {
		s.problem = reason
		return errRefused
	}
	return s.scan(s.head)
}

func (s *scanner) scan(p []byte) error {
	s.size += int64(len(p))
	if s.maxBytes > 0 && s.size > s.maxBytes {
		return s.refuse(fmt.Sprintf("Fichier trop volumineux : plus de %d Mo", s.maxBytes>>20))
	}
	s.h.Write(p)
	for _, c := range p {
		switch {
		case c == '\n':
			s.lfs++
			if s.content {
				s.lines++
				// Without quotes every non-blank line is a record: a file
				// over the limit is refused without reading further.
				if s.maxLines > 0 && !s.hasQuote && s.lines > s.maxLines+1 {
					return s.refuse(tooManyLines(s.maxLines))
				}
			}
			s.line++
			s.lineLen, s.content = 0, false
			continue
		case c == '\r':
			s.crs++
		case c == '"':
			s.hasQuote, s.content = true, true
		case c < 0x20 && c != '\t' || c == 0x7f:
			return s.refuse("Fichier illisible : ce n'est pas un fichier texte CSV (caractères binaires)")
		case c == 0x81 || c == 0x8d || c == 0x8f || c == 0x90 || c == 0x9d:
			s.undefined1252++
			s.content = true
		default:
			s.content = true
		}
		s.lineLen++
		if s.maxLine > 0 && s.lineLen > s.maxLine {
			if s.lfs == 0 && s.crs > 0 {
				return s.refuse(macLineEnds)
			}
			return s.refuse(fmt.Sprintf("Ligne %d trop longue : plus de %d Kio ; ce n'est pas un export CSV du logiciel de facturation (ou ses fins de ligne ont été perdues)",
				s.line, s.maxLine>>10))
		}
	}
	s.checkUTF8(p)
	return nil
}

// checkUTF8 counts valid multi-byte sequences and invalid bytes, carrying a
// sequence cut between two writes over to the next.
func (s *scanner) checkUTF8(p []byte) {
	if len(s.carry) > 0 {
		need := utf8.UTFMax - len(s.carry)
		s.carry = append(s.carry, p[:min(len(p), need)]...)
		if !utf8.FullRune(s.carry) && len(p) < need {
			return // still incomplete
		}
		r, size := utf8.DecodeRune(s.carry)
		if r == utf8.RuneError && size <= 1 {
			s.invalid++
			size = 1
		} else {
			s.multibyte++
		}
		// The bytes of p the sequence took; an invalid first byte takes none.
		used := size - (len(s.carry) - min(len(p), need))
		s.carry = s.carry[:0]
		p = p[max(used, 0):]
	}
	for i := 0; i < len(p); {
		if p[i] < utf8.RuneSelf {
			i++
			continue
		}
		if !utf8.FullRune(p[i:]) {
			s.carry = append(s.carry[:0], p[i:]...)
			return
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			s.invalid++
		} else {
			s.multibyte++
		}
		i += size
	}
}

// signatureProblem recognises files that are not CSV text by their first bytes.
func signatureProblem(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return "Encodage UTF-16 non pris en charge : enregistrez le fichier en CSV UTF-8 ou Windows-1252 (séparateur point-virgule)"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return "Ce fichier est une archive ZIP ou un classeur Excel, pas un fichier CSV : enregistrez-le au format CSV (séparateur point-virgule)"
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return "Ce fichier est un PDF, pas un fichier CSV"
	}
	return ""
}

const macLineEnds = "Fins de ligne Macintosh (CR seul) non prises en charge : enregistrez le fichier au format « CSV (séparateur : point-virgule) » ou « CSV UTF-8 »"

// fileScan is what the first pass tells about a whole file.
type fileScan struct {
	sha256   string
	size     int64
	lines    int // non-blank lines, the header included
	hasQuote bool
	bom      bool
	encoding string
	problem  string // French reason when the file is refused
}

// finish concludes the scan at the end of the file.
func (s *scanner) finish() fileScan {
	if s.problem == "" && len(s.head) < 5 && s.size == 0 {
		s.start() // a file of fewer than five bytes
	}
	fs := fileScan{size: s.size, lines: s.lines, hasQuote: s.hasQuote, problem: s.problem}
	if fs.problem != "" {
		return fs // not read through: no identity
	}
	if s.content {
		fs.lines++
	}
	if s.maxLines > 0 && !s.hasQuote && fs.lines > s.maxLines+1 {
		fs.problem = tooManyLines(s.maxLines)
		return fs
	}
	fs.sha256 = hex.EncodeToString(s.h.Sum(nil))
	fs.bom = bytes.HasPrefix(s.head, []byte{0xEF, 0xBB, 0xBF})
	invalid := s.invalid + len(s.carry) // a truncated sequence at the very end
	switch {
	case s.lfs == 0 && s.crs > 0:
		fs.problem = macLineEnds
	case fs.size == 0 || fs.lines == 0:
		fs.problem = "Fichier vide"
	case invalid == 0:
		fs.encoding = EncodingUTF8
	case s.multibyte > 0 || fs.bom:
		fs.problem = "Encodage incohérent : le fichier mélange UTF-8 et un autre encodage ; enregistrez-le entièrement en UTF-8 ou en Windows-1252"
	case s.undefined1252 > 0:
		fs.problem = "Encodage non reconnu : enregistrez le fichier en UTF-8 ou en Windows-1252 (ANSI)"
	default:
		fs.encoding = EncodingWindows1252
	}
	if fs.problem != "" {
		fs.sha256 = ""
	}
	return fs
}

func tooManyLines(maxLines int) string {
	return fmt.Sprintf("Fichier trop volumineux : plus de %d lignes ; découpez-le en plusieurs fichiers", maxLines)
}
