// Runs one ONNX model with ONNX Runtime (onnxruntime-node, CPU) on .npy inputs, writes the outputs
// as .npy and prints one JSON line with latency figures. Used by bench/engine/compare_ort.py.
//   node run_ort.js --model M.onnx --inputs DIR --threads T --iters N [--out DIR] [--spin 0|1]
//                   [--opt all|extended|basic|disabled] [--split-batch 1]
// --split-batch 1: every input holds N requests stacked along dimension 0 (N random images for a
// batch-1 classifier); each slice runs once (no timing) and the outputs are stacked the same way
// (what `moss model run --split-batch` does; bench/engine/top1_agreement.py).
// --opt disabled runs the graph node by node as written (a QDQ model then computes in float exactly
// as the operator specs say; with 'all' ORT fuses QDQ into integer kernels that round differently).
// --spin 0 turns off ORT's intra-op spin-waiting (session.intra_op.allow_spinning), the
// counterpart of OMP_WAIT_POLICY=passive for MOSS; on a loaded host spinning threads collapse.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const a = { threads: 1, iters: 50, warmup: 5, spin: '1', opt: 'all' };
  for (let i = 2; i + 1 < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1];
  a.threads = Number(a.threads); a.iters = Number(a.iters); a.warmup = Number(a.warmup);
  if (!a.model || !a.inputs) throw new Error('usage: --model M.onnx --inputs DIR [--threads T] [--iters N] [--out DIR]');
  return a;
}

const NPY_TYPES = { '<f4': ['float32', Float32Array], '<i8': ['int64', BigInt64Array], '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array],
                    '<i4': ['int32', Int32Array], '|b1': ['bool', Uint8Array] };

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: fortran order`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const [type, Arr] = NPY_TYPES[descr] || [];
  if (!type) throw new Error(`${file}: dtype ${descr} not supported`);
  const off = hstart + hlen;
  const bytes = buf.subarray(off);
  const copy = new Uint8Array(bytes.length); copy.set(bytes);
  const data = type === 'bool' ? copy : new Arr(copy.buffer, 0, bytes.length / Arr.BYTES_PER_ELEMENT);
  return new ort.Tensor(type, data, shape);
}

function writeNpy(file, tensor) {
  const descr = { float32: '<f4', int64: '<i8', int32: '<i4', bool: '|b1', uint8: '|u1', int8: '|i1' }[tensor.type];
  if (!descr) throw new Error(`output type ${tensor.type} not supported`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = header + ' '.repeat(pad % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1'); pre[6] = 1; pre[7] = 0; pre.writeUInt16LE(header.length, 8);
  const d = tensor.data;
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'),
                                        Buffer.from(d.buffer, d.byteOffset, d.byteLength)]));
}

function pct(sorted, p) { return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]; }

async function main() {
  const a = parseArgs(process.argv);
  const opts = { executionProviders: ['cpu'], intraOpNumThreads: a.threads, interOpNumThreads: 1,
                 executionMode: 'sequential', graphOptimizationLevel: a.opt,
                 extra: { session: { intra_op: { allow_spinning: String(a.spin) } } } };
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(a.model, opts);
  const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const feeds = {};
  for (const name of session.inputNames) feeds[name] = readNpy(path.join(a.inputs, `${name}.npy`));
  if (a['split-batch'] === '1') {
    const n = Object.values(feeds)[0].dims[0];
    const parts = {};
    for (let i = 0; i < n; ++i) {
      const one = {};
      for (const [name, t] of Object.entries(feeds)) {
        const size = t.data.length / n;
        one[name] = new ort.Tensor(t.type, t.data.slice(i * size, (i + 1) * size), [1, ...t.dims.slice(1)]);
      }
      const r = await session.run(one);
      for (const [name, t] of Object.entries(r)) (parts[name] = parts[name] || []).push(t);
    }
    fs.mkdirSync(a.out, { recursive: true });
    for (const [name, ts] of Object.entries(parts)) {
      const size = ts[0].data.length;
      const all = new ts[0].data.constructor(size * n);
      ts.forEach((t, i) => all.set(t.data, i * size));
      const dims = [ts[0].dims[0] * n, ...ts[0].dims.slice(1)];
      writeNpy(path.join(a.out, `${name.replace(/[/\\]/g, '_')}.npy`), new ort.Tensor(ts[0].type, all, dims));
    }
    console.log(JSON.stringify({ model: a.model, runtime: 'onnxruntime-node', requests: n }));
    return;
  }
  let out;
  for (let i = 0; i < a.warmup; ++i) out = await session.run(feeds);
  const times = [];
  for (let i = 0; i < a.iters; ++i) {
    const s = process.hrtime.bigint();
    out = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  if (a.out) {
    fs.mkdirSync(a.out, { recursive: true });
    // Same file naming as `moss model run` (a '/' in an output name is not a directory).
    for (const [name, t] of Object.entries(out)) writeNpy(path.join(a.out, `${name.replace(/[/\\]/g, '_')}.npy`), t);
  }
  times.sort((x, y) => x - y);
  console.log(JSON.stringify({ model: a.model, runtime: 'onnxruntime-node', version: ort.env.versions ? ort.env.versions.common : undefined,
                               threads: a.threads, spin: Number(a.spin), iters: a.iters, compile_ms: +compileMs.toFixed(2),
                               p50_ms: +pct(times, 0.5).toFixed(3), p90_ms: +pct(times, 0.9).toFixed(3),
                               min_ms: +times[0].toFixed(3) }));
}

main().catch(e => { console.error(`run_ort: ${e.message}`); process.exit(1); });
