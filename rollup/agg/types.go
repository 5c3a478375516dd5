package agg

import (
	"fmt"
	"regexp"
	"strings"
)

// ArgType is the type of one aggregate argument: its Value kind and its
// PostgreSQL type, spelled as format_type spells it ("integer",
// "numeric(12,2)", "double precision", "character varying(20)"). The
// PostgreSQL type decides result types that the kind alone does not: sum of
// an integer is a bigint but sum of a bigint a numeric, sum of a real is a
// real.
type ArgType struct {
	Kind Kind
	Type string
}

func (a ArgType) String() string { return a.Type }

// base is the canonical name of the type without its modifier
// ("numeric(12,2)" → "numeric", "int4" → "integer"), or "" for a type mr
// does not know.
func (a ArgType) base() string {
	s := strings.ToLower(a.Type)
	if i := strings.IndexByte(s, '('); i >= 0 {
		if j := strings.IndexByte(s[i:], ')'); j >= 0 {
			s = s[:i] + " " + s[i+j+1:]
		}
	}
	return typeAliases[strings.Join(strings.Fields(s), " ")]
}

// The PostgreSQL types mr aggregates, by their format_type names.
const (
	typeSmallint    = "smallint"
	typeInteger     = "integer"
	typeBigint      = "bigint"
	typeNumeric     = "numeric"
	typeReal        = "real"
	typeDouble      = "double precision"
	typeText        = "text"
	typeVarchar     = "character varying"
	typeChar        = "character"
	typeBoolean     = "boolean"
	typeDate        = "date"
	typeTimestamp   = "timestamp without time zone"
	typeTimestamptz = "timestamp with time zone"
	typeBytea       = "bytea"
)

// typeAliases maps the names PostgreSQL accepts for a type to format_type's.
var typeAliases = map[string]string{
	"smallint": typeSmallint, "int2": typeSmallint,
	"integer": typeInteger, "int": typeInteger, "int4": typeInteger,
	"bigint": typeBigint, "int8": typeBigint,
	"numeric": typeNumeric, "decimal": typeNumeric,
	"real": typeReal, "float4": typeReal,
	"double precision": typeDouble, "float8": typeDouble, "float": typeDouble,
	"text":              typeText,
	"character varying": typeVarchar, "varchar": typeVarchar,
	"character": typeChar, "char": typeChar, "bpchar": typeChar,
	"boolean": typeBoolean, "bool": typeBoolean,
	"date":                        typeDate,
	"timestamp":                   typeTimestamp,
	"timestamp without time zone": typeTimestamp,
	"timestamptz":                 typeTimestamptz,
	"timestamp with time zone":    typeTimestamptz,
	"bytea":                       typeBytea,
}

var typeKinds = map[string]Kind{
	typeSmallint: KindInt, typeInteger: KindInt, typeBigint: KindInt,
	typeNumeric: KindDecimal,
	typeReal:    KindFloat, typeDouble: KindFloat,
	typeText: KindText, typeVarchar: KindText, typeChar: KindText,
	typeBoolean:   KindBool,
	typeDate:      KindDate,
	typeTimestamp: KindTimestamp, typeTimestamptz: KindTimestamp,
	typeBytea: KindBytes,
}

// typeRE splits "numeric(12, 2)", "timestamp(3) with time zone" and
// "character varying(20)" into name, modifier and suffix.
var typeRE = regexp.MustCompile(`^([a-z0-9 ]*?)\s*(?:\(\s*([0-9]+(?:\s*,\s*-?[0-9]+)?)\s*\))?\s*([a-z ]*)$`)

// ParseType returns the ArgType of a PostgreSQL type name, as a catalog or
// a cast spells it: "int4", "integer", "numeric(12,2)", "float8",
// "varchar(20)", "timestamptz". The Type it returns is format_type's
// spelling ("numeric(12,2)", "character varying(20)"). A type mr cannot
// aggregate is an error wrapping ErrUnsupportedType.
func ParseType(name string) (ArgType, error) {
	s := strings.Join(strings.Fields(strings.ToLower(name)), " ")
	m := typeRE.FindStringSubmatch(s)
	if m == nil {
		return ArgType{}, fmt.Errorf("agg: type %q: %w", name, ErrUnsupportedType)
	}
	base := strings.TrimSpace(m[1] + " " + m[3])
	if m[3] != "" && m[1] == "" {
		base = m[3]
	}
	canon, ok := typeAliases[base]
	if !ok {
		return ArgType{}, fmt.Errorf("agg: type %q: %w", name, ErrUnsupportedType)
	}
	t := canon
	if m[2] != "" {
		mod := strings.ReplaceAll(m[2], " ", "")
		switch canon {
		case typeNumeric, typeVarchar, typeChar:
			t = canon + "(" + mod + ")"
		case typeTimestamp, typeTimestamptz:
			// timestamp(3) with time zone: the precision goes after the word.
			w := strings.TrimPrefix(canon, "timestamp")
			t = "timestamp(" + mod + ")" + w
		default:
			return ArgType{}, fmt.Errorf("agg: type %q: %s takes no modifier: %w", name, canon, ErrUnsupportedType)
		}
	}
	return ArgType{Kind: typeKinds[canon], Type: t}, nil
}

// MustParseType is ParseType for types known to be valid; it panics on an
// error.
func MustParseType(name string) ArgType {
	t, err := ParseType(name)
	if err != nil {
		panic(err)
	}
	return t
}
