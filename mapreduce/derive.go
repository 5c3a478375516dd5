package mapreduce

import (
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unsafe"

	"github.com/cockroachdb/apd/v3"
)

// A derived codec (see Codec for the rules users see) lays a Go type out
// as fields by reflection once, when the job is validated. The per-record
// path then only reads and writes memory at precomputed offsets, with no
// reflect call and no closure per field, so the value it is given stays
// on the stack: it allocates what a hand-written codec allocates (one
// pointee per non-NULL pointer field it decodes) and nothing more.

// fieldKind is the Go representation a derived field has in memory.
type fieldKind uint8

const (
	kindInt fieldKind = iota
	kindInt8
	kindInt16
	kindInt32
	kindInt64
	kindUint8
	kindUint16
	kindUint32
	kindFloat32
	kindFloat64
	kindString
	kindBool
	kindDate
	kindTime
	kindDecimal // *apd.Decimal, nil for NULL
	kindBytes
)

// derivedField is one field of a derived codec: where it lies in the Go
// value and how it is represented there.
type derivedField struct {
	offset uintptr
	kind   fieldKind
	// elem, if set, is the type a pointer at offset points to, and a nil
	// pointer is NULL; the pointee is of kind.
	elem reflect.Type
}

var (
	dateType    = reflect.TypeFor[Date]()
	timeType    = reflect.TypeFor[time.Time]()
	decimalType = reflect.TypeFor[apd.Decimal]()
)

// Columns returns a codec of T to be derived, as a zero Codec is, but
// with its columns named names, in field order: the way to name the one
// column of a scalar key or value, which otherwise is "key" or "value".
//
//	Key: mapreduce.Columns[string]("page"),
func Columns[T any](names ...string) Codec[T] {
	fields := make([]Field, len(names))
	for i, n := range names {
		fields[i].Name = n
	}
	return Codec[T]{Fields: fields}
}

// deriveCodec derives the codec of T for the role ("Key" or "Value") of
// a job. fields, if set, names the derived fields in order; a field's
// Type in it is optional, and must agree with the derived one.
func deriveCodec[T any](role string, fields []Field) (Codec[T], error) {
	t := reflect.TypeFor[T]()
	derived, layout, err := layoutOf(t, role)
	if err != nil {
		return Codec[T]{}, fmt.Errorf("%s codec: %w", role, err)
	}
	if fields != nil {
		if len(fields) != len(derived) {
			return Codec[T]{}, fmt.Errorf("%s codec: Fields names %d columns, type %s has %d", role, len(fields), t, len(derived))
		}
		for i, f := range fields {
			if f.Type != 0 && f.Type != derived[i].Type {
				return Codec[T]{}, fmt.Errorf("%s codec: Fields[%d] (%s) says %s, type %s's field %d is %s", role, i, f.Name, f.Type, t, i, derived[i].Type)
			}
			derived[i].Name = f.Name
		}
	}
	if err := checkNames(role, t, derived); err != nil {
		return Codec[T]{}, err
	}
	return Codec[T]{
		Fields: derived,
		Encode: func(v T, e Encoder) {
			p := unsafe.Pointer(&v)
			for i := range layout {
				layout[i].encode(p, e)
			}
		},
		Decode: func(d Decoder) T {
			var v T
			p := unsafe.Pointer(&v)
			for i := range layout {
				layout[i].decode(p, d)
			}
			return v
		},
	}, nil
}

// checkNames refuses two fields of one column name.
func checkNames(role string, t reflect.Type, fields []Field) error {
	seen := make(map[string]int, len(fields))
	for i, f := range fields {
		if f.Name == "" {
			return fmt.Errorf("%s codec: field %d of type %s has no column name", role, i, t)
		}
		if j, dup := seen[f.Name]; dup {
			return fmt.Errorf("%s codec: type %s has two fields named %q (fields %d and %d); rename one with an `mr:\"name\"` tag", role, t, f.Name, j, i)
		}
		seen[f.Name] = i
	}
	return nil
}

// layoutOf lays t out: a struct as its fields, in order, a scalar as one
// field named after role.
func layoutOf(t reflect.Type, role string) ([]Field, []derivedField, error) {
	key := role == "Key"
	if t.Kind() != reflect.Struct || t == timeType || t == decimalType {
		f, d, err := leafField(t, key)
		if err != nil {
			return nil, nil, fmt.Errorf("type %s: %w", t, err)
		}
		f.Name = strings.ToLower(role)
		return []Field{f}, []derivedField{d}, nil
	}
	var fields []Field
	var layout []derivedField
	if err := addStruct(t, 0, "", key, &fields, &layout); err != nil {
		return nil, nil, fmt.Errorf("type %s: %w", t, err)
	}
	if len(fields) == 0 {
		return nil, nil, fmt.Errorf("type %s has no fields to encode: a key or value needs one exported field at least", t)
	}
	return fields, layout, nil
}

// addStruct appends the fields of struct t, which lies at offset in the
// value, with path naming it in errors. An untagged embedded struct's
// fields count as the outer struct's, as in encoding/json.
func addStruct(t reflect.Type, offset uintptr, path string, key bool, fields *[]Field, layout *[]derivedField) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, tagged := sf.Tag.Lookup("mr")
		name := path + sf.Name
		switch {
		case tag == "-" || sf.Name == "_":
			continue
		case sf.Anonymous && !tagged && sf.Type.Kind() == reflect.Struct && sf.Type != timeType && sf.Type != decimalType:
			if err := addStruct(sf.Type, offset+sf.Offset, name+".", key, fields, layout); err != nil {
				return err
			}
			continue
		case !sf.IsExported():
			return fmt.Errorf("field %s is unexported, so it would not be encoded: export it, or tag it `mr:\"-\"` to leave it out", name)
		}
		f, d, err := leafField(sf.Type, key)
		if err != nil {
			return fmt.Errorf("field %s: %w", name, err)
		}
		f.Name = tag
		if f.Name == "" {
			f.Name = snakeCase(sf.Name)
		}
		d.offset += offset + sf.Offset
		*fields = append(*fields, f)
		*layout = append(*layout, d)
	}
	return nil
}

// leafField returns the field type and representation of a scalar Go
// type, at offset 0.
func leafField(t reflect.Type, key bool) (Field, derivedField, error) {
	if t.Kind() != reflect.Pointer {
		kind, typ, err := scalarKind(t)
		return Field{Type: typ}, derivedField{kind: kind}, err
	}
	elem := t.Elem()
	f, d := Field{Type: TypeDecimal}, derivedField{kind: kindDecimal}
	if elem != decimalType {
		var err error
		f, d, err = leafField(elem, false)
		if err != nil || d.elem != nil || d.kind == kindDecimal || d.kind == kindBytes {
			return Field{}, derivedField{}, fmt.Errorf("%s is not a pointer to a scalar field type: %s", t, supported)
		}
		d.elem = elem
	}
	if key {
		return Field{}, derivedField{}, fmt.Errorf("%s is a pointer, which a key compares by address, so equal values would be different keys: a key field cannot be NULL; use %s", t, keyHint(elem))
	}
	return f, d, nil
}

// keyHint suggests a key field type in place of a pointer to elem.
func keyHint(elem reflect.Type) string {
	if elem == decimalType {
		return "an int64 of scaled units or the decimal's string instead"
	}
	return elem.String() + " instead"
}

const supported = "the field types are ints (to int64), uint8 to uint32, float32, float64, string, bool, mapreduce.Date, time.Time, *apd.Decimal, []byte, and pointers to these scalars for NULL"

// scalarKind maps a non-pointer Go type to its representation and field
// type.
func scalarKind(t reflect.Type) (fieldKind, Type, error) {
	switch t {
	case dateType:
		return kindDate, TypeDate, nil
	case timeType:
		return kindTime, TypeTimestamp, nil
	case decimalType:
		return 0, 0, fmt.Errorf("apd.Decimal is held by value; use *apd.Decimal, whose nil is NULL")
	}
	switch t.Kind() {
	case reflect.Int:
		return kindInt, TypeInt64, nil
	case reflect.Int8:
		return kindInt8, TypeInt64, nil
	case reflect.Int16:
		return kindInt16, TypeInt64, nil
	case reflect.Int32:
		return kindInt32, TypeInt64, nil
	case reflect.Int64:
		return kindInt64, TypeInt64, nil
	case reflect.Uint8:
		return kindUint8, TypeInt64, nil
	case reflect.Uint16:
		return kindUint16, TypeInt64, nil
	case reflect.Uint32:
		return kindUint32, TypeInt64, nil
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return 0, 0, fmt.Errorf("%s may exceed the int64 of a bigint column; use int64", t)
	case reflect.Float32:
		return kindFloat32, TypeFloat64, nil
	case reflect.Float64:
		return kindFloat64, TypeFloat64, nil
	case reflect.String:
		return kindString, TypeString, nil
	case reflect.Bool:
		return kindBool, TypeBool, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return kindBytes, TypeBytes, nil
		}
	}
	return 0, 0, fmt.Errorf("%s has no field type; %s", t, supported)
}

// encode writes the field of the value at p.
func (f *derivedField) encode(p unsafe.Pointer, e Encoder) {
	p = unsafe.Add(p, f.offset)
	if f.elem != nil {
		if p = *(*unsafe.Pointer)(p); p == nil {
			e.Null()
			return
		}
	}
	switch f.kind {
	case kindInt:
		e.Int64(int64(*(*int)(p)))
	case kindInt8:
		e.Int64(int64(*(*int8)(p)))
	case kindInt16:
		e.Int64(int64(*(*int16)(p)))
	case kindInt32:
		e.Int64(int64(*(*int32)(p)))
	case kindInt64:
		e.Int64(*(*int64)(p))
	case kindUint8:
		e.Int64(int64(*(*uint8)(p)))
	case kindUint16:
		e.Int64(int64(*(*uint16)(p)))
	case kindUint32:
		e.Int64(int64(*(*uint32)(p)))
	case kindFloat32:
		e.Float64(float64(*(*float32)(p)))
	case kindFloat64:
		e.Float64(*(*float64)(p))
	case kindString:
		e.String(*(*string)(p))
	case kindBool:
		e.Bool(*(*bool)(p))
	case kindDate:
		e.Date(*(*Date)(p))
	case kindTime:
		e.Time(*(*time.Time)(p))
	case kindDecimal:
		if d := *(**apd.Decimal)(p); d != nil {
			e.Decimal(d)
		} else {
			e.Null()
		}
	case kindBytes:
		e.Bytes(*(*[]byte)(p))
	}
}

// decode reads the field into the value at p. The conversions back to
// narrower types are exact: the field holds what encode wrote.
func (f *derivedField) decode(p unsafe.Pointer, d Decoder) {
	p = unsafe.Add(p, f.offset)
	if f.elem != nil {
		if d.Null() {
			*(*unsafe.Pointer)(p) = nil
			return
		}
		v := reflect.New(f.elem).UnsafePointer()
		*(*unsafe.Pointer)(p) = v
		p = v
	}
	switch f.kind {
	case kindInt:
		*(*int)(p) = int(d.Int64())
	case kindInt8:
		*(*int8)(p) = int8(d.Int64())
	case kindInt16:
		*(*int16)(p) = int16(d.Int64())
	case kindInt32:
		*(*int32)(p) = int32(d.Int64())
	case kindInt64:
		*(*int64)(p) = d.Int64()
	case kindUint8:
		*(*uint8)(p) = uint8(d.Int64())
	case kindUint16:
		*(*uint16)(p) = uint16(d.Int64())
	case kindUint32:
		*(*uint32)(p) = uint32(d.Int64())
	case kindFloat32:
		*(*float32)(p) = float32(d.Float64())
	case kindFloat64:
		*(*float64)(p) = d.Float64()
	case kindString:
		*(*string)(p) = d.String()
	case kindBool:
		*(*bool)(p) = d.Bool()
	case kindDate:
		*(*Date)(p) = d.Date()
	case kindTime:
		*(*time.Time)(p) = d.Time()
	case kindDecimal:
		if !d.Null() {
			*(**apd.Decimal)(p) = d.Decimal()
		}
	case kindBytes:
		*(*[]byte)(p) = d.Bytes()
	}
}

// snakeCase spells a Go field name as a column name: TotalCents is
// total_cents, AccountID account_id, HTTPStatus http_status, P95Ms p95_ms.
func snakeCase(name string) string {
	r := []rune(name)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prev := r[i-1]
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
