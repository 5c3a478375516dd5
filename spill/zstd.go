package spill

import (
	"container/heap"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// freeWindow is the largest zstd window that decoding may allocate outside
// the budget: 8 MiB, the window of klauspost/compress's default encoder,
// which arrow-go's IPC writer uses without options, so every buffer over
// 128 KiB that Create wrote with it declares it, however small the buffer
// (Create's own encoder, ipc.go, declares at most 1 MiB). A
// Reader under a budget smaller than that (the engine allows --memory down
// to 1 MiB) must still read the files written under the same budget. A
// larger window counts against the budget.
const freeWindow = 8 << 20

// zstdWindow guards arrow-go (v18.8) against a zstd frame header that
// makes it allocate far more than the budget, outside the Reader's budget
// allocator (fuzzing found 252 MiB taken for a 13 KB file). arrow-go
// decodes the compressed buffers of a message with a streaming
// klauspost/compress decoder, which allocates the window that a frame
// header declares (WindowSize, or FrameContentSize for a single segment
// frame), up to 512 MiB, before it decodes a byte. One decoder decodes all
// buffers of a message and keeps one history buffer, which it grows, so
// the message takes the largest window of its frames. The Reader takes
// that window from the step's budget if it is larger than freeWindow
// (budgetAllocator.reserve).
//
// zstdWindow returns that largest window for the message that block, an
// Arrow Block struct in data, points to (a dictionary batch if dictionary,
// else a record batch), if its body is compressed with ZSTD; 0 otherwise.
// It walks the frames of every buffer that arrow-go may read as the
// decoder does, skippable frames included (the decoder reads ahead of what
// arrow-go asks for), up to where the bytes stop being whole frames, where
// the decoder stops too, though maybe after allocating the window of a
// frame whose header was whole. A frame whose content size exceeds budget
// gives ErrTooLarge: its buffer cannot fit the budget. Anything arrow-go
// rejects on its own gives 0 and no error; an offset outside a flatbuffer
// panics with fbError.
func zstdWindow(data, block []byte, dictionary bool, budget int64) (uint64, error) {
	msg, body, ok := blockMessage(data, block)
	if !ok || body == nil {
		return 0, nil
	}
	batch, ok := batchOf(msg, dictionary)
	if !ok || batchCodec(batch) != "zstd" {
		return 0, nil
	}
	pos, ok := batch.field(recordBatchBuffers)
	if !ok {
		return 0, nil // arrow-go panics reading a buffer
	}
	// arrow-go slices each buffer out of the body as it lies in memory,
	// in an allocation rounded up to 64 bytes, and a buffer may run into
	// the padding (fuzzing found that bypass). Past the body that memory
	// is zeros, from arrow-go's Go and C allocators alike, and zeros are no
	// frame.
	end := roundUpToMultipleOf64(len(body))
	from := func(p int) []byte {
		if p+zstd.HeaderMaxSize <= len(body) || end == len(body) {
			return body[p:]
		}
		b := make([]byte, end-p)
		copy(b, body[min(p, len(body)):])
		return b
	}
	// arrow-go reads as many Buffer structs as the schema needs, whatever
	// the vector's length says, so every struct that fits in the
	// flatbuffer may be one. Structs past the real vector hold other
	// metadata, which rarely points at a frame, and then only at one of
	// the file's own frames.
	var starts positions
	for at := pos + batch.u32(pos) + 4; uint64(at)+bufferStructSize <= uint64(len(batch.buf)); at += bufferStructSize {
		buf := batch.bytes(at, bufferStructSize)
		offset, length := binary.LittleEndian.Uint64(buf), binary.LittleEndian.Uint64(buf[8:])
		if length < 8 || offset > uint64(end) || length > uint64(end)-offset {
			continue // empty, or arrow-go fails to slice it
		}
		if int64(binary.LittleEndian.Uint64(from(int(offset)))) != -1 { // -1: stored uncompressed
			starts = append(starts, int(offset)+8)
		}
	}
	// The frames from each buffer's start on, to the end of the body, which
	// covers any buffer's end: after a buffer's last frame come padding and
	// the next buffer's length, which are no frame. The walks go forward
	// together, lowest position first, so that a frame that several of them
	// reach is walked once, and the memory taken is one position per buffer.
	var window uint64
	heap.Init(&starts)
	for last := -1; starts.Len() > 0; {
		p := heap.Pop(&starts).(int)
		if p == last {
			continue
		}
		last = p
		w, n, err := zstdFrame(from(p), budget)
		if err != nil {
			return 0, err
		}
		window = max(window, w)
		if n > 0 && p+n < end {
			heap.Push(&starts, p+n)
		}
	}
	return window, nil
}

// roundUpToMultipleOf64 is what arrow-go's memory.Buffer rounds an
// allocation up to.
func roundUpToMultipleOf64(n int) int { return (n + 63) &^ 63 }

// positions is a min-heap of positions in a message body.
type positions []int

func (h positions) Len() int           { return len(h) }
func (h positions) Less(i, j int) bool { return h[i] < h[j] }
func (h positions) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *positions) Push(x any)        { *h = append(*h, x.(int)) }
func (h *positions) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// recordWindow returns the zstdWindow of record batch i of data.
func recordWindow(data []byte, i int, budget int64) (uint64, error) {
	footer, ok := fileFooter(data)
	if !ok {
		return 0, nil
	}
	start, n, err := footer.vector(footerRecordBatches, blockSize)
	if err != nil || i >= n {
		return 0, nil // checkFooter rejected it
	}
	return zstdWindow(data, footer.buf[start+uint32(i)*blockSize:], false, budget)
}

// dictionaryWindow returns the largest zstdWindow of the dictionary
// batches of data, which arrow-go decodes when it opens the file, each with
// a decoder of its own.
func dictionaryWindow(data []byte, budget int64) (uint64, error) {
	footer, ok := fileFooter(data)
	if !ok {
		return 0, nil
	}
	start, n, err := footer.vector(footerDictionaries, blockSize)
	if err != nil {
		return 0, err // arrow-go panics reading past the footer
	}
	var window uint64
	for i := range n {
		w, err := zstdWindow(data, footer.buf[start+uint32(i)*blockSize:], true, budget)
		if err != nil {
			return 0, fmt.Errorf("dictionary %d: %w", i, err)
		}
		window = max(window, w)
	}
	return window, nil
}

// zstdFrame returns the window that the zstd frame at the start of b
// declares (0 for a skippable frame, or none), and its length: 0 if the
// frame is not whole, where the decoder fails or ends, though it may have
// allocated the window already. A frame whose content size exceeds budget
// gives ErrTooLarge.
func zstdFrame(b []byte, budget int64) (window uint64, n int, err error) {
	var h zstd.Header
	rest, err := h.DecodeAndStrip(b)
	if err != nil {
		return 0, 0, nil
	}
	if h.Skippable {
		if uint64(h.SkippableSize) > uint64(len(rest)) {
			return 0, 0, nil
		}
		return 0, len(b) - len(rest) + int(h.SkippableSize), nil
	}
	if h.HasFCS && h.FrameContentSize > uint64(budget) {
		return 0, 0, fmt.Errorf("zstd frame of %d bytes: %w", h.FrameContentSize, ErrTooLarge)
	}
	window = h.WindowSize
	if h.SingleSegment {
		window = max(h.FrameContentSize, zstd.MinWindowSize)
	}
	// The blocks: a 3-byte header (last flag, type, size), then size
	// bytes, or one byte for an RLE block.
	for last := false; !last; {
		if len(rest) < 3 {
			return window, 0, nil
		}
		header := uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16
		last, rest = header&1 != 0, rest[3:]
		size := int(header >> 3)
		switch (header >> 1) & 3 {
		case blockRLE:
			size = 1
		case blockReserved:
			return window, 0, nil
		}
		if size > len(rest) {
			return window, 0, nil
		}
		rest = rest[size:]
	}
	if h.HasCheckSum {
		if len(rest) < 4 {
			return window, 0, nil
		}
		rest = rest[4:]
	}
	return window, len(b) - len(rest), nil
}

// zstd block types.
const (
	blockRLE      = 1
	blockReserved = 3
)
