package spill

import (
	"encoding/binary"
	"fmt"
)

// checkFooter guards arrow-go (v18.8) against metadata it would choke on
// fatally rather than with an error or a recoverable panic. arrow-go sizes
// Go slices by flatbuffers vector lengths without checking them against
// the buffer (the fields and children of the schema, the custom metadata
// of the schema, fields and record batch messages), so one damaged length
// asks for terabytes; and it recurses into field children without a depth
// limit, so a cycle overflows the stack. checkFooter walks exactly those
// vectors the way arrow-go's generated accessors do (uint32 arithmetic
// included) and rejects lengths the buffer cannot hold, schemas nested
// deeper than Arrow allows, and more fields than the buffer can hold.
// Anything else malformed is left to arrow-go, and checkFooter's own index
// panics to the caller's recover.
func checkFooter(body []byte) error {
	// The file ends with the footer flatbuffer, its int32 size, "ARROW1".
	const tail = 4 + 6
	if len(body) < tail {
		return nil // arrow-go rejects it
	}
	end := len(body) - tail
	size := int(binary.LittleEndian.Uint32(body[end:]))
	if size > end {
		return nil // arrow-go rejects it
	}
	c := fbChecker{maxFields: size / 4}
	footer := fbRoot(body[end-size : end])
	if pos, ok := footer.field(footerSchema); ok {
		schema := footer.indirect(pos)
		if err := c.fields(schema, schemaFields, 0); err != nil {
			return err
		}
		if _, _, err := schema.vector(schemaMetadata, 4); err != nil {
			return err
		}
	}
	start, n, err := footer.vector(footerRecordBatches, blockSize)
	if err != nil {
		return err
	}
	for i := range n {
		if err := checkMessage(body, footer.buf[start+uint32(i)*blockSize:]); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	return nil
}

// checkMessage checks the custom metadata length of the message that
// block, an Arrow Block struct, points to.
func checkMessage(body, block []byte) error {
	offset := int64(binary.LittleEndian.Uint64(block))
	metaLen := int64(int32(binary.LittleEndian.Uint32(block[8:])))
	if offset < 0 || metaLen < 8 || offset+metaLen > int64(len(body)) {
		return nil // arrow-go rejects it
	}
	meta := body[offset : offset+metaLen]
	// A continuation marker and a length, or (before Arrow 0.15) just a length.
	if binary.LittleEndian.Uint32(meta) == 0xFFFFFFFF {
		meta = meta[8:]
	} else {
		meta = meta[4:]
	}
	_, _, err := fbRoot(meta).vector(messageMetadata, 4)
	return err
}

// Vtable slots of the checked fields (File.fbs, Schema.fbs, Message.fbs),
// and the size of a Block struct.
const (
	footerSchema        = 1
	footerRecordBatches = 3
	schemaFields        = 1
	schemaMetadata      = 2
	fieldChildren       = 5
	fieldMetadata       = 6
	messageMetadata     = 4
	blockSize           = 24
	// maxDepth is arrow-go's own nesting limit for reading arrays.
	maxDepth = 64
)

type fbChecker struct {
	maxFields int // a field table takes at least 4 bytes of the buffer
	nfields   int
}

// fields checks the vector of Field tables in slot of t, recursively.
func (c *fbChecker) fields(t fbTable, slot, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("schema nested deeper than %d", maxDepth)
	}
	start, n, err := t.vector(slot, 4)
	if err != nil {
		return err
	}
	if c.nfields += n; c.nfields > c.maxFields {
		return fmt.Errorf("schema has more fields than its %d bytes can hold", len(t.buf))
	}
	for i := range n {
		f := t.indirect(start + uint32(i)*4)
		if err := c.fields(f, fieldChildren, depth+1); err != nil {
			return err
		}
		if _, _, err := f.vector(fieldMetadata, 4); err != nil {
			return err
		}
	}
	return nil
}

// fbTable is a flatbuffers table: buf and the table's position in it.
type fbTable struct {
	buf []byte
	pos uint32
}

func fbRoot(buf []byte) fbTable {
	return fbTable{buf, binary.LittleEndian.Uint32(buf)}
}

func (t fbTable) u32(at uint32) uint32 { return binary.LittleEndian.Uint32(t.buf[at:]) }

// field returns the position of the value in slot, if present.
func (t fbTable) field(slot int) (uint32, bool) {
	vtable := t.pos - t.u32(t.pos) // an soffset: wraps like int32
	vo := uint32(4 + 2*slot)
	if vo >= uint32(binary.LittleEndian.Uint16(t.buf[vtable:])) {
		return 0, false
	}
	o := binary.LittleEndian.Uint16(t.buf[vtable+vo:])
	return t.pos + uint32(o), o != 0
}

// indirect returns the table that the uoffset at pos points to.
func (t fbTable) indirect(pos uint32) fbTable { return fbTable{t.buf, pos + t.u32(pos)} }

// vector returns the start and length of the vector in slot, and an error
// if the buffer cannot hold that many elements of elemSize bytes.
func (t fbTable) vector(slot int, elemSize uint32) (start uint32, n int, err error) {
	pos, ok := t.field(slot)
	if !ok {
		return 0, 0, nil
	}
	at := pos + t.u32(pos)
	length := t.u32(at)
	start = at + 4
	if uint64(start)+uint64(length)*uint64(elemSize) > uint64(len(t.buf)) {
		return 0, 0, fmt.Errorf("flatbuffers vector of %d elements overruns its %d-byte buffer", length, len(t.buf))
	}
	return start, int(length), nil
}
