package spill

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// checkFooter guards arrow-go (v18.8) against metadata that would take the
// process down rather than fail: a fatal out-of-memory error, a stack
// overflow, or far more memory than the budget on the Go heap, out of reach
// of the Reader's budget allocator. A file whose checksum matches its
// manifest was written by mr, so these checks matter for Decode of
// arbitrary bytes, and for a file whose bits flipped in the writer's memory
// before hashing.
//
// arrow-go decodes the schema (fields, their children and names, custom
// metadata of the schema and fields) and each record batch message's
// custom metadata into Go values sized by flatbuffers lengths it does not
// check, and it recurses into field children without a depth limit.
// checkFooter walks exactly those parts the way arrow-go's generated
// accessors do (uint32 arithmetic included) and rejects, each with its seed
// in testdata/fuzz/FuzzDecode:
//
//   - vectors longer than their buffer can hold, since one damaged length
//     asks make for tens of gigabytes (fields-length, children-length,
//     metadata-length, message-metadata-length);
//   - fields nested deeper than arrow-go's own limit for reading arrays,
//     64, since a field that is its own child recurses until the stack
//     overflows (children-cycle);
//   - a schema, or a message's metadata, that would take more than the
//     budget to decode, counting every field and string each time arrow-go
//     decodes it, since a table or string shared by many offsets is decoded
//     once per offset (children-fanout: 2^20 fields from a 4 KB file;
//     metadata-shared: 25 MB of copies of one 64 KB string).
//
// TestDecode_Defences (seeds_test.go) makes each seed and shows that
// arrow-go alone dies on it or allocates more than 16 times the budget.
// The other defences are Reader.decode's budget allocator (a buffer that
// claims a huge uncompressed size: decompressed-size-17TB), zstdWindow (a
// zstd frame that declares a huge window: zstd-window-256MB,
// zstd-window-buffers-length-0, zstd-window-buffer-past-body,
// zstd-content-size-500MB, zstd-dictionary-window-256MB) and validate in Reader.Record
// (string-offsets, string-offset-negative, bool-values-short; and the row
// counts of TestDecode_Rows, which make reading slow, not fatal). checkFooter also reads
// the compression codec of every record batch message, since arrow-go does
// not expose it. Anything else malformed is left to arrow-go, and an offset
// out of range panics with fbError, which Reader.decode recovers.
func checkFooter(body []byte, budget int64) (compression string, err error) {
	footer, ok := fileFooter(body)
	if !ok {
		return "", nil // arrow-go rejects it
	}
	c := schemaCost{budget: budget}
	if pos, ok := footer.field(footerSchema); ok {
		schema := footer.indirect(pos)
		if err := c.fields(schema, schemaFields, 0); err != nil {
			return "", err
		}
		if err := c.metadata(schema, schemaMetadata); err != nil {
			return "", err
		}
	}
	start, n, err := footer.vector(footerRecordBatches, blockSize)
	if err != nil {
		return "", err
	}
	codecs := map[string]bool{}
	for i := range n {
		codec, err := checkMessage(body, footer.buf[start+uint32(i)*blockSize:], budget)
		if err != nil {
			return "", fmt.Errorf("record %d: %w", i, err)
		}
		if codec != "" {
			codecs[codec] = true
		}
	}
	switch len(codecs) {
	case 0:
		return "none", nil
	case 1:
		for codec := range codecs {
			return codec, nil
		}
	}
	names := make([]string, 0, len(codecs))
	for codec := range codecs {
		names = append(names, codec)
	}
	slices.Sort(names)
	return strings.Join(names, "+"), nil
}

// fileFooter returns the footer flatbuffer of an Arrow IPC file, which
// ends with the footer, its int32 size and "ARROW1"; ok is false if the
// size does not fit, which arrow-go rejects.
func fileFooter(data []byte) (footer fbTable, ok bool) {
	const tail = 4 + 6
	if len(data) < tail {
		return fbTable{}, false
	}
	end := len(data) - tail
	size := int(binary.LittleEndian.Uint32(data[end:]))
	if size > end || size < 4 {
		return fbTable{}, false
	}
	return fbRoot(data[end-size : end]), true
}

// checkMessage checks the custom metadata of the message that block, an
// Arrow Block struct, points to, and returns the compression codec of its
// record batch ("none" if uncompressed; "" if it is not one arrow-go would
// read).
func checkMessage(data, block []byte, budget int64) (string, error) {
	msg, _, ok := blockMessage(data, block)
	if !ok {
		return "", nil // arrow-go rejects it
	}
	c := schemaCost{budget: budget}
	if err := c.metadata(msg, messageMetadata); err != nil {
		return "", err
	}
	batch, ok := batchOf(msg, false)
	if !ok {
		return "", nil
	}
	return batchCodec(batch), nil
}

// blockMessage returns the message flatbuffer that block, an Arrow Block
// struct (offset, metadata length, body length), points to in data, and
// the message's body, nil if it does not fit in data; ok is false if the
// metadata does not fit, which arrow-go rejects.
func blockMessage(data, block []byte) (msg fbTable, body []byte, ok bool) {
	offset := int64(binary.LittleEndian.Uint64(block))
	metaLen := int64(int32(binary.LittleEndian.Uint32(block[8:])))
	bodyLen := int64(binary.LittleEndian.Uint64(block[16:]))
	if offset < 0 || metaLen < 8 || offset+metaLen > int64(len(data)) {
		return fbTable{}, nil, false
	}
	meta := data[offset : offset+metaLen]
	// A continuation marker and a length, or (before Arrow 0.15) just a length.
	if binary.LittleEndian.Uint32(meta) == 0xFFFFFFFF {
		meta = meta[8:]
	} else {
		meta = meta[4:]
	}
	if end := offset + metaLen; bodyLen >= 0 && bodyLen <= int64(len(data))-end {
		body = data[end : end+bodyLen]
	}
	return fbRoot(meta), body, true
}

// batchOf returns the RecordBatch table of msg, as arrow-go finds it: the
// header of a record batch message, or the data of the header of a
// dictionary batch (arrow-go takes whatever is in the footer's
// dictionaries as one, without checking the message type); ok is false if
// there is none.
func batchOf(msg fbTable, dictionary bool) (batch fbTable, ok bool) {
	if !dictionary {
		if pos, ok := msg.field(messageHeaderType); !ok || msg.u8(pos) != headerRecordBatch {
			return fbTable{}, false
		}
	}
	pos, ok := msg.field(messageHeader)
	if !ok {
		return fbTable{}, false
	}
	batch = msg.indirect(pos)
	if dictionary {
		if pos, ok = batch.field(dictionaryBatchData); !ok {
			return fbTable{}, false
		}
		batch = batch.indirect(pos)
	}
	return batch, true
}

// batchCodec returns the body compression codec of a RecordBatch table:
// "none", "lz4", "zstd" or "codec <n>".
func batchCodec(batch fbTable) string {
	pos, ok := batch.field(recordBatchCompression)
	if !ok {
		return "none"
	}
	codec := byte(0) // the default: LZ4_FRAME
	bc := batch.indirect(pos)
	if pos, ok := bc.field(bodyCompressionCodec); ok {
		codec = bc.u8(pos)
	}
	switch codec {
	case 0:
		return "lz4"
	case 1:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", codec)
}

// Vtable slots of the fields read (File.fbs, Schema.fbs, Message.fbs),
// enum values, and the sizes of the Block and Buffer structs.
const (
	footerSchema           = 1
	footerDictionaries     = 2
	footerRecordBatches    = 3
	schemaFields           = 1
	schemaMetadata         = 2
	fieldName              = 0
	fieldChildren          = 5
	fieldMetadata          = 6
	keyValueKey            = 0
	keyValueValue          = 1
	messageHeaderType      = 1
	messageHeader          = 2
	messageMetadata        = 4
	recordBatchBuffers     = 2
	recordBatchCompression = 3
	dictionaryBatchData    = 1
	bodyCompressionCodec   = 0
	headerRecordBatch      = 3
	blockSize              = 24
	bufferStructSize       = 16
	// maxDepth is arrow-go's own nesting limit for reading arrays.
	maxDepth = 64
)

// What arrow-go allocates on the Go heap per decoded item, rounded up: an
// arrow.Field (88 bytes) with its data type and slice slot; a metadata
// entry's key and value headers, twice (arrow.NewMetadata copies them).
// The bytes of every string are counted on top.
const (
	fieldCost    = 256
	keyValueCost = 64
)

// schemaCost adds up what decoding a schema or a message's metadata takes.
type schemaCost struct {
	budget int64
	used   int64
}

func (c *schemaCost) add(n int64) error {
	if c.used += n; c.used > c.budget {
		return ErrTooLarge
	}
	return nil
}

// fields checks the vector of Field tables in slot of t, recursively.
func (c *schemaCost) fields(t fbTable, slot, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("schema nested deeper than %d", maxDepth)
	}
	start, n, err := t.vector(slot, 4)
	if err != nil {
		return err
	}
	if err := c.add(int64(n) * fieldCost); err != nil {
		return err
	}
	for i := range n {
		f := t.indirect(start + uint32(i)*4)
		if err := c.add(int64(f.stringLen(fieldName))); err != nil {
			return err
		}
		if err := c.metadata(f, fieldMetadata); err != nil {
			return err
		}
		if err := c.fields(f, fieldChildren, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// metadata checks the vector of KeyValue tables in slot of t.
func (c *schemaCost) metadata(t fbTable, slot int) error {
	start, n, err := t.vector(slot, 4)
	if err != nil {
		return err
	}
	if err := c.add(int64(n) * keyValueCost); err != nil {
		return err
	}
	for i := range n {
		kv := t.indirect(start + uint32(i)*4)
		if err := c.add(int64(kv.stringLen(keyValueKey)) + int64(kv.stringLen(keyValueValue))); err != nil {
			return err
		}
	}
	return nil
}

// fbError is the panic of an offset outside the flatbuffer.
type fbError struct {
	at   uint32
	size int
}

func (e fbError) Error() string {
	return fmt.Sprintf("flatbuffers offset %d out of range of its %d-byte buffer", e.at, e.size)
}

// fbTable is a flatbuffers table: buf and the table's position in it.
type fbTable struct {
	buf []byte
	pos uint32
}

func fbRoot(buf []byte) fbTable {
	return fbTable{buf, fbTable{buf: buf}.u32(0)}
}

func (t fbTable) bytes(at uint32, n int) []byte {
	if uint64(at)+uint64(n) > uint64(len(t.buf)) {
		panic(fbError{at, len(t.buf)})
	}
	return t.buf[at : int(at)+n]
}

func (t fbTable) u8(at uint32) byte    { return t.bytes(at, 1)[0] }
func (t fbTable) u16(at uint32) uint16 { return binary.LittleEndian.Uint16(t.bytes(at, 2)) }
func (t fbTable) u32(at uint32) uint32 { return binary.LittleEndian.Uint32(t.bytes(at, 4)) }

// field returns the position of the value in slot, if present.
func (t fbTable) field(slot int) (uint32, bool) {
	vtable := t.pos - t.u32(t.pos) // an soffset: wraps like int32
	vo := uint32(4 + 2*slot)
	if vo >= uint32(t.u16(vtable)) {
		return 0, false
	}
	o := t.u16(vtable + vo)
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

// stringLen returns the length of the string in slot, 0 if absent. A
// length past the buffer is arrow-go's to reject (its slicing panics).
func (t fbTable) stringLen(slot int) int {
	pos, ok := t.field(slot)
	if !ok {
		return 0
	}
	n := int(t.u32(pos + t.u32(pos)))
	return min(n, len(t.buf))
}
