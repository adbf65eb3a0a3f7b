// Evaluates ONNX models with ONNX Runtime (onnxruntime-node, CPU, no graph optimisation) for
// tools/make_conformance_cases.py. Reads one JSON request from stdin:
//   [{"model": "path/model.onnx", "inputs": {"name": {"type": "float32", "dims": [..], "b64": ".."}}}, ...]
// (a string tensor has "strings": [..] instead of "b64", in requests and results)
// and prints one JSON array with, per model, {"outputs": [{"name","type","dims","b64"}...]} or
// {"error": "message"}. Run with NODE_PATH pointing at a node_modules holding onnxruntime-node.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

const ARRAYS = { float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array,
                 int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
                 int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array, float16: Uint16Array };

function toTensor(t) {
  if (t.type === 'string') return new ort.Tensor('string', t.strings, t.dims);
  const buf = Buffer.from(t.b64, 'base64');
  const copy = new Uint8Array(buf.length); copy.set(buf);
  const Arr = ARRAYS[t.type];
  if (!Arr) throw new Error(`type ${t.type} not supported`);
  return new ort.Tensor(t.type, new Arr(copy.buffer, 0, buf.length / Arr.BYTES_PER_ELEMENT), t.dims);
}

function fromTensor(name, t) {
  if (t.type === 'string') return { name, type: t.type, dims: t.dims, strings: Array.from(t.data) };
  const d = t.data;
  const b = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return { name, type: t.type, dims: t.dims, b64: b.toString('base64') };
}

async function main() {
  const req = JSON.parse(fs.readFileSync(0, 'utf8'));
  const res = [];
  for (const r of req) {
    try {
      const s = await ort.InferenceSession.create(r.model, { executionProviders: ['cpu'],
        graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 });
      const feeds = {};
      for (const [k, v] of Object.entries(r.inputs)) feeds[k] = toTensor(v);
      const out = await s.run(feeds);
      res.push({ outputs: s.outputNames.map(n => fromTensor(n, out[n])) });
    } catch (e) {
      res.push({ error: String(e.message || e) });
    }
  }
  process.stdout.write(JSON.stringify(res));
}
main().catch(e => { console.error(`ort_eval: ${e.message}`); process.exit(1); });
