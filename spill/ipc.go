package spill

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/endian"
	"github.com/apache/arrow-go/v18/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"
	"github.com/klauspost/compress/zstd"
)

// ipcFile writes an Arrow IPC file whose record batch buffers are
// compressed with zstd (BodyCompression ZSTD, BUFFER), the format that
// arrow-go's ipc.FileWriter with WithZstd writes. mr writes it itself
// because arrow-go (v18.8) makes a new zstd encoder for every writer, at
// the default level, and has no option to reuse or configure one: a run
// writes partitions × buckets files per flush, and setting up and running
// those encoders took about a third of the map phase's CPU. ipcFile
// compresses with one shared encoder at a fast level instead.
//
// It writes only what spill files need: the column types of
// supportedType, no dictionaries, no custom metadata. The format is the
// Arrow columnar format's "IPC File Format" (Schema.fbs, Message.fbs,
// File.fbs); the flatbuffers tables are built by hand, slot by slot, with
// the slot numbers and enum values of those schemas.
type ipcFile struct {
	w      io.Writer
	pos    int64 // bytes written to w
	schema *arrow.Schema
	fb     *flatbuffers.Builder // reused for every message
	blocks []ipcBlock           // the record batches, for the footer
	// nodes and buffers describe the record batch being written.
	nodes   []fieldNode
	buffers []bufferRegion
}

// ipcBlock is a File.fbs Block: where a message starts, the length of its
// prefix, flatbuffer and padding, and the length of its body.
type ipcBlock struct {
	offset int64
	meta   int32
	body   int64
}

// fieldNode is a Message.fbs FieldNode.
type fieldNode struct{ length, nulls int64 }

// bufferRegion is a Schema.fbs Buffer: a region of a message body.
type bufferRegion struct{ offset, length int64 }

// encoder compresses every buffer of every spill file, only through
// EncodeAll, which is safe for concurrent use, each call on one goroutine.
// A call takes one of the encoder's GOMAXPROCS internal encoders
// (WithEncoderConcurrency's default, kept so that map tasks on every CPU
// compress at once, where 1 would serialize them); each keeps its tables
// (256 KiB) and history (up to twice the window) for the life of the
// process. SpeedFastest, because a spill file is read once or twice
// soon after it is written: speed matters more than a few percent of size
// (BenchmarkWriter's rollup data compresses 1.94:1 instead of 2.06:1 at
// the default level). A 1 MiB window (SpeedFastest's default is 4 MiB)
// bounds that history; the buffers of a map task's flush to one bucket
// (10,000 rows: 80 KB for an int64 column) fit in it many times over.
var encoder = func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithWindowSize(1<<20))
	if err != nil {
		panic(err) // the options are constants
	}
	return enc
}()

// Flatbuffers enum values (Schema.fbs, Message.fbs), as arrow-go's
// generated code names them; MessageHeader.RecordBatch is footer.go's
// headerRecordBatch.
const (
	metadataV5           = 4  // MetadataVersion.V5
	headerSchema         = 1  // MessageHeader.Schema
	typeInt              = 2  // Type.Int
	typeFloatingPoint    = 3  // Type.FloatingPoint
	typeBinary           = 4  // Type.Binary
	typeUtf8             = 5  // Type.Utf8
	typeBool             = 6  // Type.Bool
	typeDate             = 8  // Type.Date
	typeTimestamp        = 10 // Type.Timestamp
	precisionDouble      = 2  // Precision.DOUBLE
	dateUnitDay          = 0  // DateUnit.DAY
	timeUnitMicrosecond  = 2  // TimeUnit.MICROSECOND
	compressionZstd      = 1  // CompressionType.ZSTD
	compressionPerBuffer = 0  // BodyCompressionMethod.BUFFER
)

// Table sizes and the slots that footer.go, which reads them, does not
// name.
const (
	messageFields         = 5
	messageVersion        = 0
	messageBodyLength     = 3
	footerFields          = 5
	footerVersion         = 0
	schemaTableFields     = 4
	schemaEndianness      = 0
	fieldFields           = 7
	fieldNullable         = 1
	fieldTypeType         = 2
	fieldType             = 3
	recordBatchFields     = 5
	recordBatchLength     = 0
	recordBatchNodes      = 1
	bodyCompressionFields = 2
	bodyCompressionMethod = 1
	fieldNodeSize         = 16
)

// arrowMagic starts and ends an Arrow IPC file; at the start it is padded
// to 8 bytes.
var arrowMagic = []byte("ARROW1\x00\x00")

// ipcContinuation starts every encapsulated message.
const ipcContinuation = 0xFFFFFFFF

// storedRaw, in place of a buffer's uncompressed length, is int64 -1: it
// marks a buffer stored as it is, which the format allows when
// compression does not make it smaller.
const storedRaw = math.MaxUint64

// supportedType reports whether ipcFile writes columns of type dt: exactly
// the types of shuffle.Schema.
func supportedType(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.INT64, arrow.FLOAT64, arrow.STRING, arrow.BINARY, arrow.BOOL, arrow.DATE32:
		return true
	case arrow.TIMESTAMP:
		ts := dt.(*arrow.TimestampType)
		return ts.Unit == arrow.Microsecond && ts.TimeZone == "UTC"
	}
	return false
}

// newIPCFile returns an ipcFile that writes to w, or an error naming the
// first field of schema it cannot write. It writes nothing yet.
func newIPCFile(w io.Writer, schema *arrow.Schema) (*ipcFile, error) {
	if schema.HasMetadata() {
		return nil, errors.New("schema has custom metadata, which spill files do not store")
	}
	for _, f := range schema.Fields() {
		if !supportedType(f.Type) {
			return nil, fmt.Errorf("field %q: spill files do not store type %s", f.Name, f.Type)
		}
		if f.HasMetadata() {
			return nil, fmt.Errorf("field %q has custom metadata, which spill files do not store", f.Name)
		}
	}
	return &ipcFile{w: w, schema: schema, fb: flatbuffers.NewBuilder(1024)}, nil
}

// start writes the magic and the schema message.
func (f *ipcFile) start() error {
	if err := f.write(arrowMagic); err != nil {
		return err
	}
	b := f.fb
	b.Reset()
	schema := f.schemaFB()
	_, err := f.writeMessage(headerSchema, schema, 0)
	return err
}

// writeRecord writes rec as one record batch message.
func (f *ipcFile) writeRecord(rec arrow.RecordBatch) error {
	if !rec.Schema().Equal(f.schema) {
		return fmt.Errorf("record schema %v differs from the file's %v", rec.Schema(), f.schema)
	}
	s := scratchPool.Get().(*scratch)
	defer s.put()
	f.nodes, f.buffers = f.nodes[:0], f.buffers[:0]
	for _, col := range rec.Columns() {
		f.column(s, col)
	}

	b := f.fb
	b.Reset()
	b.StartVector(fieldNodeSize, len(f.nodes), 8)
	for i := len(f.nodes) - 1; i >= 0; i-- {
		b.Prep(8, fieldNodeSize)
		b.PrependInt64(f.nodes[i].nulls)
		b.PrependInt64(f.nodes[i].length)
	}
	nodes := b.EndVector(len(f.nodes))
	b.StartVector(bufferStructSize, len(f.buffers), 8)
	for i := len(f.buffers) - 1; i >= 0; i-- {
		b.Prep(8, bufferStructSize)
		b.PrependInt64(f.buffers[i].length)
		b.PrependInt64(f.buffers[i].offset)
	}
	buffers := b.EndVector(len(f.buffers))
	b.StartObject(bodyCompressionFields)
	b.PrependInt8Slot(bodyCompressionCodec, compressionZstd, 0)
	b.PrependInt8Slot(bodyCompressionMethod, compressionPerBuffer, 0)
	compression := b.EndObject()
	b.StartObject(recordBatchFields)
	b.PrependInt64Slot(recordBatchLength, rec.NumRows(), 0)
	b.PrependUOffsetTSlot(recordBatchNodes, nodes, 0)
	b.PrependUOffsetTSlot(recordBatchBuffers, buffers, 0)
	b.PrependUOffsetTSlot(recordBatchCompression, compression, 0)
	batch := b.EndObject()

	blk := ipcBlock{offset: f.pos, body: int64(len(s.body))}
	meta, err := f.writeMessage(headerRecordBatch, batch, blk.body)
	if err != nil {
		return err
	}
	if err := f.write(s.body); err != nil {
		return err
	}
	blk.meta = meta
	f.blocks = append(f.blocks, blk)
	return nil
}

// column appends the field node and buffers of col, which has a supported
// type, to the record batch: validity bitmap (empty without nulls), then
// for Utf8 and Binary zero-based offsets and the data, else the values.
func (f *ipcFile) column(s *scratch, col arrow.Array) {
	data := col.Data()
	off, n := data.Offset(), data.Len()
	f.nodes = append(f.nodes, fieldNode{length: int64(n), nulls: int64(col.NullN())})
	bufs := data.Buffers()
	if col.NullN() == 0 {
		f.addBuffer(s, nil)
	} else {
		f.addBuffer(s, s.bitmap(bufs[0], off, n))
	}
	switch col.DataType().ID() {
	case arrow.BOOL:
		f.addBuffer(s, s.bitmap(bufs[1], off, n))
	case arrow.STRING, arrow.BINARY:
		offsets, first, last := s.offsets(bufs[1], off, n)
		f.addBuffer(s, offsets)
		if last > first {
			f.addBuffer(s, bufs[2].Bytes()[first:last])
		} else {
			f.addBuffer(s, nil)
		}
	default: // fixed width
		width := col.DataType().(arrow.FixedWidthDataType).BitWidth() / 8
		if n == 0 {
			f.addBuffer(s, nil)
		} else {
			f.addBuffer(s, bufs[1].Bytes()[off*width:(off+n)*width])
		}
	}
}

// addBuffer compresses raw into the body and describes it. An empty
// buffer takes no bytes, as arrow-go writes it and every reader expects:
// a length of 0 and no length prefix.
func (f *ipcFile) addBuffer(s *scratch, raw []byte) {
	start := len(s.body)
	if len(raw) > 0 {
		s.body = binary.LittleEndian.AppendUint64(s.body, uint64(len(raw)))
		s.body = encoder.EncodeAll(raw, s.body)
		if len(s.body)-start-8 >= len(raw) {
			s.body = binary.LittleEndian.AppendUint64(s.body[:start], storedRaw)
			s.body = append(s.body, raw...)
		}
	}
	f.buffers = append(f.buffers, bufferRegion{offset: int64(start), length: int64(len(s.body) - start)})
	s.body = append(s.body, zeros[:padding(len(s.body))]...)
}

// close writes the footer, its size and the magic.
func (f *ipcFile) close() error {
	b := f.fb
	b.Reset()
	schema := f.schemaFB()
	b.StartVector(blockSize, 0, 8) // no dictionaries; arrow-go writes the empty vector too
	dictionaries := b.EndVector(0)
	b.StartVector(blockSize, len(f.blocks), 8)
	for i := len(f.blocks) - 1; i >= 0; i-- {
		blk := f.blocks[i]
		b.Prep(8, blockSize)
		b.PrependInt64(blk.body)
		b.Pad(4)
		b.PrependInt32(blk.meta)
		b.PrependInt64(blk.offset)
	}
	batches := b.EndVector(len(f.blocks))
	b.StartObject(footerFields)
	b.PrependInt16Slot(footerVersion, metadataV5, 0)
	b.PrependUOffsetTSlot(footerSchema, schema, 0)
	b.PrependUOffsetTSlot(footerDictionaries, dictionaries, 0)
	b.PrependUOffsetTSlot(footerRecordBatches, batches, 0)
	b.Finish(b.EndObject())
	footer := b.FinishedBytes()
	if err := f.write(footer); err != nil {
		return err
	}
	if err := f.write(binary.LittleEndian.AppendUint32(nil, uint32(len(footer)))); err != nil {
		return err
	}
	return f.write(arrowMagic[:6])
}

// schemaFB builds the Schema table in f.fb.
func (f *ipcFile) schemaFB() flatbuffers.UOffsetT {
	b := f.fb
	fields := make([]flatbuffers.UOffsetT, f.schema.NumFields())
	for i, field := range f.schema.Fields() {
		name := b.CreateString(field.Name)
		typeType, typ := typeFB(b, field.Type)
		b.StartVector(4, 0, 4) // children: none, written as arrow-go does
		children := b.EndVector(0)
		b.StartObject(fieldFields)
		b.PrependUOffsetTSlot(fieldName, name, 0)
		b.PrependBoolSlot(fieldNullable, field.Nullable, false)
		b.PrependByteSlot(fieldTypeType, typeType, 0)
		b.PrependUOffsetTSlot(fieldType, typ, 0)
		b.PrependUOffsetTSlot(fieldChildren, children, 0)
		fields[i] = b.EndObject()
	}
	b.StartVector(4, len(fields), 4)
	for i := len(fields) - 1; i >= 0; i-- {
		b.PrependUOffsetT(fields[i])
	}
	vec := b.EndVector(len(fields))
	b.StartObject(schemaTableFields)
	// The buffers are written as they lie in memory.
	b.PrependInt16Slot(schemaEndianness, int16(endian.NativeEndian), 0)
	b.PrependUOffsetTSlot(schemaFields, vec, 0)
	return b.EndObject()
}

// typeFB builds the type table of dt, a supported type, and returns its
// Type union tag.
func typeFB(b *flatbuffers.Builder, dt arrow.DataType) (byte, flatbuffers.UOffsetT) {
	switch dt.ID() {
	case arrow.INT64:
		b.StartObject(2)
		b.PrependInt32Slot(0, 64, 0)
		b.PrependBoolSlot(1, true, false)
		return typeInt, b.EndObject()
	case arrow.FLOAT64:
		b.StartObject(1)
		b.PrependInt16Slot(0, precisionDouble, 0)
		return typeFloatingPoint, b.EndObject()
	case arrow.STRING:
		b.StartObject(0)
		return typeUtf8, b.EndObject()
	case arrow.BINARY:
		b.StartObject(0)
		return typeBinary, b.EndObject()
	case arrow.BOOL:
		b.StartObject(0)
		return typeBool, b.EndObject()
	case arrow.DATE32:
		b.StartObject(1)
		b.PrependInt16Slot(0, dateUnitDay, 1) // the default is MILLISECOND
		return typeDate, b.EndObject()
	case arrow.TIMESTAMP:
		tz := b.CreateString(dt.(*arrow.TimestampType).TimeZone)
		b.StartObject(2)
		b.PrependInt16Slot(0, timeUnitMicrosecond, 0)
		b.PrependUOffsetTSlot(1, tz, 0)
		return typeTimestamp, b.EndObject()
	}
	panic(fmt.Sprintf("spill: unsupported type %s", dt)) // newIPCFile refused it
}

// writeMessage finishes the Message table with header in f.fb and writes
// it encapsulated: continuation marker, int32 length of the flatbuffer and
// its padding, the flatbuffer, zeros up to a multiple of 8. It returns the
// length of all that, the Block's metaDataLength; the body comes next.
func (f *ipcFile) writeMessage(headerType byte, header flatbuffers.UOffsetT, bodyLength int64) (int32, error) {
	b := f.fb
	b.StartObject(messageFields)
	b.PrependInt16Slot(messageVersion, metadataV5, 0)
	b.PrependByteSlot(messageHeaderType, headerType, 0)
	b.PrependUOffsetTSlot(messageHeader, header, 0)
	b.PrependInt64Slot(messageBodyLength, bodyLength, 0)
	b.Finish(b.EndObject())
	msg := b.FinishedBytes()
	pad := padding(len(msg))
	var prefix [8]byte
	binary.LittleEndian.PutUint32(prefix[:], ipcContinuation)
	binary.LittleEndian.PutUint32(prefix[4:], uint32(len(msg)+pad))
	for _, p := range [][]byte{prefix[:], msg, zeros[:pad]} {
		if err := f.write(p); err != nil {
			return 0, err
		}
	}
	return int32(8 + len(msg) + pad), nil
}

func (f *ipcFile) write(p []byte) error {
	n, err := f.w.Write(p)
	f.pos += int64(n)
	return err
}

// zeros pads to a multiple of 8 bytes.
var zeros [8]byte

// padding returns how many bytes take n to a multiple of 8, the alignment
// of every message and buffer in the file.
func padding(n int) int { return -n & 7 }

// scratch holds a record batch's body as it is compressed, and the bitmap
// copies and rebased offsets of sliced arrays. Writers share them through
// scratchPool, since a map task's flush writes one file per bucket.
type scratch struct {
	body []byte
	tmp  []byte
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooledScratch is the largest scratch put back in the pool: a flush's
// record batch compresses to less, and a rare larger one should not stay
// pinned in memory.
const maxPooledScratch = 16 << 20

func (s *scratch) put() {
	if cap(s.body)+cap(s.tmp) > maxPooledScratch {
		return
	}
	s.body = s.body[:0]
	scratchPool.Put(s)
}

// bitmap returns the n bits of buf from bit off on, starting at bit 0:
// the bitmap itself when off is a whole byte, else a copy in s.tmp. A nil
// buf (an array of nulls only) gives zeros.
func (s *scratch) bitmap(buf *memory.Buffer, off, n int) []byte {
	size := int(bitutil.BytesForBits(int64(n)))
	if size == 0 {
		return nil
	}
	var bits []byte
	if buf != nil {
		bits = buf.Bytes()
	}
	if bits != nil && off%8 == 0 {
		return bits[off/8 : off/8+size]
	}
	s.tmp = append(s.tmp[:0], make([]byte, size)...)
	if bits != nil {
		bitutil.CopyBitmap(bits, off, n, s.tmp, 0)
	}
	return s.tmp
}

// offsets returns the n+1 offsets of buf from offset off on, rebased to
// start at 0 (in s.tmp unless they do already), and the range of the data
// buffer they cover. An array without an offsets buffer is empty, and
// gets the one offset 0 that the format asks for.
func (s *scratch) offsets(buf *memory.Buffer, off, n int) (offsets []byte, first, last int) {
	if buf == nil || buf.Len() == 0 {
		s.tmp = append(s.tmp[:0], 0, 0, 0, 0)
		return s.tmp, 0, 0
	}
	all := arrow.Int32Traits.CastFromBytes(buf.Bytes())[off : off+n+1]
	first, last = int(all[0]), int(all[n])
	if first == 0 {
		return buf.Bytes()[off*4 : (off+n+1)*4], first, last
	}
	s.tmp = s.tmp[:0]
	for _, o := range all {
		s.tmp = binary.NativeEndian.AppendUint32(s.tmp, uint32(o-all[0]))
	}
	return s.tmp, first, last
}
