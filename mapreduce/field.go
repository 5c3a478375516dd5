package mapreduce

import (
	"fmt"
	"time"
)

// Type is the type of a key or value field: what the shuffle files store
// and what the sink's output columns are made of.
type Type int

// The field types. Each has one Go representation in Encoder and Decoder.
const (
	TypeInt64     Type = iota + 1 // int64; SQL bigint
	TypeFloat64                   // float64; SQL double precision
	TypeString                    // string; SQL text
	TypeBool                      // bool; SQL boolean
	TypeDate                      // Date; SQL date
	TypeTimestamp                 // time.Time, microsecond precision, UTC; SQL timestamptz
)

var typeNames = map[Type]string{
	TypeInt64: "int64", TypeFloat64: "float64", TypeString: "string", TypeBool: "bool",
	TypeDate: "date", TypeTimestamp: "timestamp",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Field names one column of a key or value, in the order its Codec writes it.
type Field struct {
	Name string
	Type Type
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

// Encoder receives the fields of one key or value, in the order of the
// Codec's Fields. The engine has one per destination (hashing, shuffle
// files, sink rows); a Codec never needs to know which.
type Encoder interface {
	Int64(v int64)
	Float64(v float64)
	String(v string)
	Bool(v bool)
	Date(v Date)
	Time(v time.Time)
}

// Decoder yields the fields of one key or value, in the order Encode wrote
// them. Strings it returns are the caller's to keep.
type Decoder interface {
	Int64() int64
	Float64() float64
	String() string
	Bool() bool
	Date() Date
	Time() time.Time
}

// Codec tells the engine how a key or value type is laid out as fields, so
// that it can be hashed, spilled to Arrow and written to the sink without
// reflection. Encode and Decode must write and read Fields in order:
//
//	Encode(t, e) ; Decode(d) == t
//
// Register checks the order against Fields once, when the job is registered.
type Codec[T any] struct {
	Fields []Field
	Encode func(t T, e Encoder)
	Decode func(d Decoder) T
}
