// read.mjs: read Arrow IPC files with Apache Arrow JS and print, as JSON,
// each file's schema and rows. Used by arrowjs.go; run it as
//
//	node read.mjs FILE...
//
// Values are JSON-able and exact: null, booleans, strings, binary as
// lower-case hex; every number (integers, dates as days, timestamps as
// ticks of their unit, floats) is a decimal string, since JSON numbers
// lose int64 precision, -0 and NaN.
import { readFileSync } from 'node:fs';
import { tableFromIPC, compressionRegistry, CompressionType, Type } from 'apache-arrow';
import { decompress } from 'fzstd';

// Arrow JS ships no codecs. fzstd may return a view at an odd offset,
// where Arrow JS cannot lay a BigInt64Array: copy those.
compressionRegistry.set(CompressionType.ZSTD, {
	decode(data) {
		const out = decompress(data);
		return out.byteOffset % 8 === 0 ? out : out.slice();
	},
});

function number(v) {
	if (typeof v === 'bigint') return v.toString();
	if (Object.is(v, -0)) return '-0';
	return String(v); // NaN, Infinity, -Infinity, shortest round trip
}

// cells returns the values of column i of table, in row order.
function cells(table, i) {
	const field = table.schema.fields[i];
	const column = table.getChildAt(i);
	const out = [];
	for (const data of column.data) {
		for (let j = 0; j < data.length; j++) {
			if (!data.getValid(j)) {
				out.push(null);
				continue;
			}
			switch (field.type.typeId) {
				case Type.Date:
				case Type.Timestamp:
				case Type.Time:
				case Type.Duration:
					// get() converts to milliseconds as a float; the stored
					// ticks are exact.
					out.push(number(data.values[data.offset + j]));
					break;
				case Type.Binary:
				case Type.LargeBinary:
					out.push(Buffer.from(column.get(out.length)).toString('hex'));
					break;
				default: {
					const v = column.get(out.length);
					out.push(typeof v === 'number' || typeof v === 'bigint' ? number(v) : typeof v === 'object' ? String(v) : v);
				}
			}
		}
	}
	return out;
}

const tables = process.argv.slice(2).map((path) => {
	const table = tableFromIPC(readFileSync(path));
	const fields = table.schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable }));
	const columns = fields.map((_, i) => cells(table, i));
	const rows = [];
	for (let r = 0; r < table.numRows; r++) rows.push(columns.map((c) => c[r]));
	return { path, fields, batches: table.batches.length, rows };
});
process.stdout.write(JSON.stringify(tables));
