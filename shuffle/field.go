package shuffle

import (
	"fmt"
	"time"

	"github.com/cockroachdb/apd/v3"
)

// Type is the type of a key or value field: what the shuffle files store
// and what the sink's output columns are made of.
type Type int

// The field types. Each has one Go representation in Encoder and Decoder
// and one Arrow type in shuffle files (see Schema).
const (
	TypeInt64     Type = iota + 1 // int64; Arrow int64; SQL bigint
	TypeFloat64                   // float64; Arrow float64; SQL double precision
	TypeString                    // string; Arrow utf8; SQL text
	TypeBool                      // bool; Arrow bool; SQL boolean
	TypeDate                      // Date; Arrow date32; SQL date
	TypeTimestamp                 // time.Time, microsecond precision, UTC; Arrow timestamp[us, UTC]; SQL timestamptz
	TypeDecimal                   // apd.Decimal, exact; Arrow utf8 (its decimal text); SQL numeric
	TypeBytes                     // []byte; Arrow binary; SQL bytea
)

var typeNames = map[Type]string{
	TypeInt64: "int64", TypeFloat64: "float64", TypeString: "string", TypeBool: "bool",
	TypeDate: "date", TypeTimestamp: "timestamp", TypeDecimal: "decimal", TypeBytes: "bytes",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Valid reports whether t is one of the field types.
func (t Type) Valid() bool { return typeNames[t] != "" }

// Field names one column of a key or value, in the order its codec writes
// it.
type Field struct {
	Name string
	Type Type
	// Array makes an output column an array of Type (a rollup's max_n).
	// Shuffle records hold no arrays: only Finalize writes them.
	Array bool
}

// Date is a calendar day, counted in days since 1970-01-01. It is a plain
// integer so that keys holding it stay pointer-free and cheap to hash and
// compare, unlike time.Time.
type Date int32

// DateOf returns the UTC calendar day of t.
func DateOf(t time.Time) Date {
	const secondsPerDay = 24 * 60 * 60
	s := t.Unix()
	d := s / secondsPerDay
	if s%secondsPerDay < 0 {
		d-- // floor division for instants before the epoch
	}
	return Date(d)
}

// Time returns midnight UTC of d.
func (d Date) Time() time.Time { return time.Unix(int64(d)*24*60*60, 0).UTC() }

func (d Date) String() string { return d.Time().Format(time.DateOnly) }

// Encoder receives the fields of one key or value, in the order of its
// Fields. The engine has one per destination (a key hash, a shuffle
// record, a sink row); a codec never needs to know which. Null stands for
// a field of any type that is SQL NULL; the encoder does not keep v of
// Decimal or Bytes past the call.
type Encoder interface {
	Int64(v int64)
	Float64(v float64)
	String(v string)
	Bool(v bool)
	Date(v Date)
	Time(v time.Time)
	Decimal(v *apd.Decimal)
	Bytes(v []byte)
	Null()
}

// Decoder yields the fields of one key or value, in the order an Encoder
// received them. Null reports whether the next field is NULL, and if it
// is, consumes it; a codec of a field that can be NULL asks it first.
// Strings, decimals and bytes it returns are the caller's to keep.
type Decoder interface {
	Int64() int64
	Float64() float64
	String() string
	Bool() bool
	Date() Date
	Time() time.Time
	Decimal() *apd.Decimal
	Bytes() []byte
	Null() bool
}
