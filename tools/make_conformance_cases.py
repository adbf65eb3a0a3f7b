#!/usr/bin/python3
"""Builds the engine's own conformance cases: tests/conformance/cases/<name>/model.onnx and
test_data_set_0/{input,output}_N.pb, the same layout as ONNX's backend test data.

They cover what Debian's ONNX test data (opset <= 17) lacks: opset 18-21 operators and attribute
changes, the com.microsoft contrib operators ONNX Runtime's tools write, and operators whose
installed cases cannot be reproduced (seeded random generators, RoiAlign max mode, ...).
Expected outputs are computed by ONNX Runtime (npm onnxruntime-node@1.30.0, graph optimisation
off) through tools/ort_eval.js. The generated files are committed, so CI needs neither python3-onnx
nor npm; rerun this after editing a case:

    (cd bench/engine/ort && npm install --ignore-scripts)
    /usr/bin/python3 tools/make_conformance_cases.py [--ort-modules bench/engine/ort/node_modules]
        [--only NAME_GLOB]

A case ORT refuses is reported and not written (exit 1).
"""
import argparse
import base64
import fnmatch
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, mapping, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "conformance", "cases")
MS = "com.microsoft"

NP_TO_ORT = {np.float32: "float32", np.float64: "float64", np.int8: "int8", np.uint8: "uint8",
             np.int16: "int16", np.uint16: "uint16", np.int32: "int32", np.uint32: "uint32",
             np.int64: "int64", np.uint64: "uint64", np.bool_: "bool", np.float16: "float16"}
ORT_TO_NP = {v: k for k, v in NP_TO_ORT.items()}

rng = np.random.default_rng(20261204)
CASES = []


def f32(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def case(name, nodes, inputs, outputs, opset=21, ms=False, inits=()):
    """inputs: [(name, array)]; outputs: [name] (types come from ONNX Runtime's results)."""
    CASES.append(dict(name=name, nodes=nodes, inputs=inputs, outputs=outputs, opset=opset, ms=ms,
                      inits=list(inits)))


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def node(op, ins, outs, **attrs):
    domain = attrs.pop("domain", "")
    return helper.make_node(op, ins, outs, domain=domain, **attrs)


# ---- opset 18-21 ---------------------------------------------------------------------------------

def opset18_21_cases():
    # Col2Im (18)
    case("col2im_default", [node("Col2Im", ["x", "image", "block"], ["y"])],
         [("x", f32(1, 5, 5))], ["y"], inits=[const("image", np.array([5, 5], np.int64)),
                                               const("block", np.array([1, 5], np.int64))])
    case("col2im_pads_strides_dilations",
         [node("Col2Im", ["x", "image", "block"], ["y"], pads=[1, 0, 1, 1], strides=[2, 1],
               dilations=[1, 2])],
         [("x", f32(2, 2 * 6, 9))], ["y"],
         inits=[const("image", np.array([5, 6], np.int64)), const("block", np.array([2, 3], np.int64))])
    # AffineGrid (20)
    for ac in (0, 1):
        case(f"affine_grid_2d_align{ac}", [node("AffineGrid", ["theta", "size"], ["grid"], align_corners=ac)],
             [("theta", f32(2, 2, 3))], ["grid"], inits=[const("size", np.array([2, 3, 5, 6], np.int64))])
        case(f"affine_grid_3d_align{ac}", [node("AffineGrid", ["theta", "size"], ["grid"], align_corners=ac)],
             [("theta", f32(2, 3, 4))], ["grid"], inits=[const("size", np.array([2, 1, 3, 4, 5], np.int64))])
    # DeformConv (19)
    case("deform_conv_basic", [node("DeformConv", ["x", "w", "offset"], ["y"], kernel_shape=[2, 2])],
         [("x", f32(1, 2, 4, 4)), ("w", f32(3, 2, 2, 2)), ("offset", f32(1, 8, 3, 3, lo=-1.5, hi=1.5))], ["y"])
    case("deform_conv_bias_mask_groups",
         [node("DeformConv", ["x", "w", "offset", "b", "mask"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
               strides=[2, 1], dilations=[1, 2], group=2, offset_group=2)],
         [("x", f32(2, 4, 5, 6)), ("w", f32(4, 2, 3, 3)), ("offset", f32(2, 2 * 18, 3, 4, lo=-2, hi=2)),
          ("b", f32(4)), ("mask", f32(2, 2 * 9, 3, 4, lo=0, hi=1))], ["y"])
    # Split num_outputs (18), uneven
    case("split_num_outputs_uneven", [node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3)],
         [("x", f32(2, 7))], ["a", "b", "c"], opset=18)
    # Pad axes (18) and wrap (19)
    case("pad_axes_constant", [node("Pad", ["x", "pads", "v", "axes"], ["y"], mode="constant")],
         [("x", f32(2, 3, 4))], ["y"], opset=18,
         inits=[const("pads", np.array([1, 0, 2, 3], np.int64)), const("v", np.array(1.5, np.float32)),
                const("axes", np.array([0, -1], np.int64))])
    case("pad_axes_reflect", [node("Pad", ["x", "pads", "", "axes"], ["y"], mode="reflect")],
         [("x", f32(2, 3, 4))], ["y"], opset=18,
         inits=[const("pads", np.array([1, 2, 2, 1], np.int64)), const("axes", np.array([1, 2], np.int64))])
    case("pad_wrap", [node("Pad", ["x", "pads"], ["y"], mode="wrap")],
         [("x", f32(3, 4))], ["y"], opset=19, inits=[const("pads", np.array([1, 2, 2, 1], np.int64))])
    # Resize antialias (18) and cubic
    for mode in ("linear", "cubic"):
        case(f"resize_antialias_{mode}_downsample",
             [node("Resize", ["x", "", "scales"], ["y"], mode=mode, antialias=1)],
             [("x", f32(1, 2, 8, 9))], ["y"], opset=18,
             inits=[const("scales", np.array([1, 1, 0.5, 0.4], np.float32))])
        case(f"resize_antialias_{mode}_sizes",
             [node("Resize", ["x", "", "", "sizes"], ["y"], mode=mode, antialias=1)],
             [("x", f32(1, 1, 10, 7))], ["y"], opset=18, inits=[const("sizes", np.array([1, 1, 3, 5], np.int64))])
    case("resize_cubic_axes_pytorch_half_pixel",
         [node("Resize", ["x", "", "", "sizes"], ["y"], mode="cubic", axes=[2, 3],
               coordinate_transformation_mode="pytorch_half_pixel")],
         [("x", f32(1, 2, 4, 5))], ["y"], opset=18, inits=[const("sizes", np.array([7, 3], np.int64))])
    case("resize_cubic_exclude_outside_half_pixel",
         [node("Resize", ["x", "", "scales"], ["y"], mode="cubic", exclude_outside=1, cubic_coeff_a=-0.5)],
         [("x", f32(1, 1, 5, 5))], ["y"], opset=13, inits=[const("", np.zeros(0, np.float32)),
                                                             const("scales", np.array([1, 1, 1.6, 0.8], np.float32))])
    case("resize_nearest_uint8", [node("Resize", ["x", "", "scales"], ["y"], mode="nearest")],
         [("x", rng.integers(0, 255, (1, 1, 3, 4)).astype(np.uint8))], ["y"], opset=13,
         inits=[const("scales", np.array([1, 1, 2, 1.5], np.float32))])
    # Cast (19): float -> bfloat16 rounds to nearest even in ONNX Runtime (checked through a round
    # trip, onnxruntime-node has no bfloat16 tensors). `saturate` only concerns float8 targets
    # (ORT refuses it elsewhere; the engine refuses float8: unit test).
    case("cast_19_float_bfloat16_roundtrip",
         [node("Cast", ["x"], ["h"], to=TensorProto.BFLOAT16), node("Cast", ["h"], ["y"], to=TensorProto.FLOAT)],
         [("x", f32(4, 8, lo=-3, hi=3))], ["y"], opset=19)
    # Gelu (20)
    case("gelu_20_none", [node("Gelu", ["x"], ["y"])], [("x", f32(3, 5, lo=-4, hi=4))], ["y"], opset=20)
    case("gelu_20_tanh", [node("Gelu", ["x"], ["y"], approximate="tanh")], [("x", f32(3, 5, lo=-4, hi=4))],
         ["y"], opset=20)
    # GroupNormalization: 18 (scale per group) and 21 (scale per channel)
    case("group_norm_18", [node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2, epsilon=1e-3)],
         [("x", f32(2, 4, 3, 3)), ("s", f32(2)), ("b", f32(2))], ["y"], opset=18)
    case("group_norm_21", [node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2)],
         [("x", f32(2, 6, 5)), ("s", f32(6)), ("b", f32(6))], ["y"], opset=21)
    # ConstantOfShape (20/21 types)
    case("constant_of_shape_int32", [node("ConstantOfShape", ["shape"], ["y"],
                                          value=helper.make_tensor("v", TensorProto.INT32, [1], [7]))],
         [], ["y"], opset=21, inits=[const("shape", np.array([2, 3], np.int64))])
    case("constant_of_shape_default", [node("ConstantOfShape", ["shape"], ["y"])],
         [("shape", np.array([3, 1, 2], np.int64))], ["y"], opset=20)
    # Reductions with axes as an input (18)
    for op in ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"):
        case(f"{op.lower()}_18_axes_input", [node(op, ["x", "axes"], ["y"], keepdims=0)],
             [("x", f32(2, 3, 4, lo=0.1, hi=2))], ["y"], opset=18,
             inits=[const("axes", np.array([0, -1], np.int64))])
    case("reducemean_18_noop_empty_axes", [node("ReduceMean", ["x"], ["y"], noop_with_empty_axes=1)],
         [("x", f32(2, 3))], ["y"], opset=18)
    case("reducemax_18_no_axes", [node("ReduceMax", ["x"], ["y"])], [("x", f32(2, 3, 2))], ["y"], opset=18)
    # Bitwise (18)
    a = rng.integers(-1000, 1000, (3, 4)).astype(np.int32)
    b = rng.integers(-1000, 1000, (4,)).astype(np.int32)
    for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
        case(f"{op.lower()}_int32_broadcast", [node(op, ["a", "b"], ["y"])], [("a", a), ("b", b)], ["y"], opset=18)
    case("bitwisenot_uint16", [node("BitwiseNot", ["a"], ["y"])],
         [("a", rng.integers(0, 65535, (5,)).astype(np.uint16))], ["y"], opset=18)


# ---- operators the installed test data cannot check ------------------------------------------------

def extra_cases():
    x = f32(2, 3, 6, 7, lo=0, hi=4)
    rois = np.array([[0, 0, 4, 5], [1.2, 0.5, 5.5, 4.8], [-1, -1, 2, 2], [3, 2, 3.2, 2.1]], np.float32)
    bi = np.array([0, 1, 1, 0], np.int64)
    for mode in ("avg", "max"):
        for ctm in ("half_pixel", "output_half_pixel"):
            case(f"roialign_16_{mode}_{ctm}",
                 [node("RoiAlign", ["x", "rois", "bi"], ["y"], mode=mode, coordinate_transformation_mode=ctm,
                       output_height=3, output_width=2, sampling_ratio=0 if mode == "avg" else 2,
                       spatial_scale=0.9)],
                 [("x", x), ("rois", rois), ("bi", bi)], ["y"], opset=16)
    case("roialign_10_default", [node("RoiAlign", ["x", "rois", "bi"], ["y"], output_height=2, output_width=2)],
         [("x", x), ("rois", rois), ("bi", bi)], ["y"], opset=10)
    case("upsample_7_nearest", [node("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 3.0])],
         [("x", f32(1, 2, 2, 3))], ["y"], opset=7)
    case("upsample_9_linear", [node("Upsample", ["x", "scales"], ["y"], mode="linear")],
         [("x", f32(1, 1, 3, 4))], ["y"], opset=9, inits=[const("scales", np.array([1, 1, 2, 1.5], np.float32))])
    case("maxpool_int8", [node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[1, 2], pads=[0, 0, 1, 1])],
         [("x", rng.integers(-128, 127, (1, 2, 4, 5)).astype(np.int8))], ["y"], opset=12)
    case("maxpool_float16", [node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2])],
         [("x", f32(1, 2, 7, 7).astype(np.float16))], ["y"], opset=12)
    case("melweightmatrix_float", [node("MelWeightMatrix", ["n", "len", "rate", "lo", "hi"], ["y"])], [],
         ["y"], opset=17, inits=[const("n", np.array(8, np.int64)), const("len", np.array(32, np.int64)),
                                 const("rate", np.array(16000, np.int64)), const("lo", np.array(100, np.float32)),
                                 const("hi", np.array(7000, np.float32))])
    # Seeded generators: ONNX Runtime uses std::default_random_engine and the <random> distributions;
    # the engine does the same, so with a seed the first run agrees.
    case("random_uniform_seed", [node("RandomUniform", [], ["y"], shape=[3, 4], low=-2.0, high=3.0, seed=7.0)],
         [], ["y"], opset=1)
    case("random_normal_seed", [node("RandomNormal", [], ["y"], shape=[4, 3], mean=1.0, scale=2.0, seed=11.0)],
         [], ["y"], opset=1)
    case("random_uniform_like_seed", [node("RandomUniformLike", ["x"], ["y"], seed=3.0)],
         [("x", f32(2, 5))], ["y"], opset=1)
    case("random_normal_like_seed_double",
         [node("RandomNormalLike", ["x"], ["y"], seed=5.0, dtype=TensorProto.DOUBLE)],
         [("x", f32(2, 5))], ["y"], opset=1)
    case("bernoulli_seed", [node("Bernoulli", ["x"], ["y"], seed=2.0)], [("x", f32(4, 6, lo=0, hi=1))], ["y"],
         opset=15)
    case("multinomial_seed", [node("Multinomial", ["x"], ["y"], seed=4.0, sample_size=6, dtype=TensorProto.INT64)],
         [("x", np.log(f32(3, 5, lo=0.05, hi=1)))], ["y"], opset=7)


# ---- com.microsoft contrib operators ------------------------------------------------------------

def contrib_cases():
    x = f32(2, 3, 8, lo=-3, hi=3)
    bias = f32(8)
    case("ms_gelu", [node("Gelu", ["x"], ["y"], domain=MS)], [("x", x)], ["y"], ms=True)
    case("ms_fast_gelu", [node("FastGelu", ["x"], ["y"], domain=MS)], [("x", x)], ["y"], ms=True)
    case("ms_fast_gelu_bias", [node("FastGelu", ["x", "b"], ["y"], domain=MS)], [("x", x), ("b", bias)], ["y"], ms=True)
    case("ms_bias_gelu", [node("BiasGelu", ["x", "b"], ["y"], domain=MS)], [("x", x), ("b", bias)], ["y"], ms=True)
    case("ms_quick_gelu", [node("QuickGelu", ["x"], ["y"], domain=MS, alpha=1.702)], [("x", x)], ["y"], ms=True)
    hidden = 8
    g, be, sb = f32(hidden), f32(hidden), f32(hidden)
    case("ms_skip_layer_norm", [node("SkipLayerNormalization", ["x", "skip", "g", "b"], ["y"], domain=MS,
                                     epsilon=1e-5)],
         [("x", x), ("skip", f32(2, 3, 8)), ("g", g), ("b", be)], ["y"], ms=True)
    case("ms_skip_layer_norm_bias_sum",
         [node("SkipLayerNormalization", ["x", "skip", "g", "b", "sb"], ["y", "", "", "sum"], domain=MS,
               epsilon=1e-5)],
         [("x", x), ("skip", f32(2, 3, 8)), ("g", g), ("b", be), ("sb", sb)], ["y", "sum"], ms=True)
    vocab, seq = 11, 3
    ids = rng.integers(0, vocab, (2, seq)).astype(np.int32)
    case("ms_embed_layer_norm",
         [node("EmbedLayerNormalization", ["ids", "seg", "we", "pe", "se", "g", "b", "mask"], ["y", "mask_index"],
               domain=MS, epsilon=1e-5)],
         [("ids", ids), ("seg", rng.integers(0, 2, (2, seq)).astype(np.int32)), ("we", f32(vocab, hidden)),
          ("pe", f32(6, hidden)), ("se", f32(2, hidden)), ("g", g), ("b", be),
          ("mask", np.array([[1, 1, 0], [1, 1, 1]], np.int32))], ["y", "mask_index"], ms=True)
    heads = 2
    w = f32(hidden, 3 * hidden, lo=-0.5, hi=0.5)
    b3 = f32(3 * hidden)
    case("ms_attention", [node("Attention", ["x", "w", "b"], ["y"], domain=MS, num_heads=heads)],
         [("x", x), ("w", w), ("b", b3)], ["y"], ms=True)
    case("ms_attention_mask_index",
         [node("Attention", ["x", "w", "b", "m"], ["y"], domain=MS, num_heads=heads)],
         [("x", x), ("w", w), ("b", b3), ("m", np.array([3, 2], np.int32))], ["y"], ms=True)
    case("ms_attention_mask_2d_unidirectional",
         [node("Attention", ["x", "w", "b", "m"], ["y"], domain=MS, num_heads=heads, unidirectional=1)],
         [("x", x), ("w", w), ("b", b3), ("m", np.array([[1, 1, 1], [1, 0, 1]], np.int32))], ["y"], ms=True)
    q, k, v = f32(2, 3, hidden), f32(2, 4, hidden), f32(2, 4, hidden)
    case("ms_multihead_attention", [node("MultiHeadAttention", ["q", "k", "v"], ["y"], domain=MS, num_heads=heads)],
         [("q", q), ("k", k), ("v", v)], ["y"], ms=True)
    case("ms_multihead_attention_bias_mask",
         [node("MultiHeadAttention", ["q", "k", "v", "b", "m"], ["y"], domain=MS, num_heads=heads,
               scale=0.3)],
         [("q", q), ("k", k), ("v", v), ("b", b3), ("m", np.array([[1, 1, 0, 1], [1, 1, 1, 0]], np.int32))],
         ["y"], ms=True)
    case("ms_fused_matmul", [node("FusedMatMul", ["a", "b"], ["y"], domain=MS, alpha=0.5)],
         [("a", f32(2, 3, 4)), ("b", f32(4, 5))], ["y"], ms=True)
    case("ms_fused_matmul_trans",
         [node("FusedMatMul", ["a", "b"], ["y"], domain=MS, alpha=1.5, transA=1, transB=1)],
         [("a", f32(2, 4, 3)), ("b", f32(2, 5, 4))], ["y"], ms=True)


# ---- more cases for Col2Im, AffineGrid and DeformConv (after the others: the shared generator's
# draws for earlier cases stay as they were) ----------------------------------------------------

def spatial_cases():
    case("deform_conv_mask_no_bias_offset_groups",
         [node("DeformConv", ["x", "w", "offset", "", "mask"], ["y"], pads=[0, 1, 1, 0], offset_group=3)],
         [("x", f32(1, 3, 4, 5)), ("w", f32(2, 3, 2, 2)), ("offset", f32(1, 3 * 8, 4, 5, lo=-3, hi=3)),
          ("mask", f32(1, 3 * 4, 4, 5, lo=-0.5, hi=1))], ["y"])
    case("deform_conv_bias_strided_groups",
         [node("DeformConv", ["x", "w", "offset", "b"], ["y"], kernel_shape=[1, 3], strides=[2, 2], group=3,
               offset_group=1)],
         [("x", f32(2, 3, 5, 7)), ("w", f32(6, 1, 1, 3)), ("offset", f32(2, 6, 3, 3, lo=-4, hi=4)), ("b", f32(6))],
         ["y"])
    # Col2Im beyond 2-D (ONNX Runtime computes 1-D and 3-D with its Col2imNd)
    case("col2im_1d", [node("Col2Im", ["x", "image", "block"], ["y"], strides=[2], pads=[1, 2])],
         [("x", f32(2, 3 * 3, 6))], ["y"],
         inits=[const("image", np.array([10], np.int64)), const("block", np.array([3], np.int64))])
    case("col2im_3d_dilations", [node("Col2Im", ["x", "image", "block"], ["y"], dilations=[1, 2, 1])],
         [("x", f32(1, 2 * 8, 3 * 2 * 2))], ["y"],
         inits=[const("image", np.array([4, 4, 3], np.int64)), const("block", np.array([2, 2, 2], np.int64))])
    case("col2im_3d_pads", [node("Col2Im", ["x", "image", "block"], ["y"], pads=[0, 1, 1, 1, 0, 0])],
         [("x", f32(1, 2 * 8, 4 * 4 * 3))], ["y"],
         inits=[const("image", np.array([4, 4, 3], np.int64)), const("block", np.array([2, 2, 2], np.int64))])
    # AffineGrid with single-point axes (ONNX Runtime's base grid is 1 there with align_corners, 0 without)
    # and in double precision
    for ac in (0, 1):
        case(f"affine_grid_single_points_align{ac}",
             [node("AffineGrid", ["theta", "size"], ["grid"], align_corners=ac)],
             [("theta", f32(1, 3, 4))], ["grid"], inits=[const("size", np.array([1, 2, 1, 3, 1], np.int64))])
    case("affine_grid_2d_double", [node("AffineGrid", ["theta", "size"], ["grid"])],
         [("theta", f32(3, 2, 3).astype(np.float64))], ["grid"], inits=[const("size", np.array([3, 1, 4, 2], np.int64))])



# ---- string tensors through Gather, Concat, Equal and other data movement ---------------------

def string_cases():
    def words(*shape):
        pool = np.array(["", "a", "the", "cat", "Sat", "naïve", "x y", "9"], dtype=object)
        return pool[rng.integers(0, len(pool), shape)].astype(object)
    case("string_gather_concat_reshape",
         [node("Gather", ["vocab", "ids"], ["g"], axis=0), node("Concat", ["g", "tail"], ["c"], axis=0),
          node("Reshape", ["c", "shape"], ["y"])],
         [("vocab", words(5)), ("tail", words(3))], ["g", "y"], opset=19,
         inits=[const("ids", np.array([4, -1, 0, 2, 2], np.int64)), const("shape", np.array([2, 4], np.int64))])
    case("string_equal_broadcast", [node("Equal", ["a", "b"], ["y"])], [("a", words(3, 4)), ("b", words(4))], ["y"],
         opset=19)
    case("string_transpose_slice_where",
         [node("Transpose", ["a"], ["t"], perm=[1, 0]), node("Slice", ["t", "st", "en"], ["s"]),
          node("Where", ["cond", "s", "b"], ["y"])],
         [("a", words(3, 4)), ("b", words(1, 3)), ("cond", rng.integers(0, 2, (2, 3)).astype(np.bool_))], ["y"],
         opset=19, inits=[const("st", np.array([1], np.int64)), const("en", np.array([3], np.int64))])


# ---- com.microsoft operators on float16 (those ONNX Runtime's CPU provider runs in float16) --------

def contrib_half_cases():
    def h(*shape, lo=-1.0, hi=1.0):
        return f32(*shape, lo=lo, hi=hi).astype(np.float16)
    x = h(2, 3, 8, lo=-3, hi=3)
    hidden, heads = 8, 2
    case("ms_gelu_f16", [node("Gelu", ["x"], ["y"], domain=MS)], [("x", x)], ["y"], ms=True)
    case("ms_fast_gelu_bias_f16", [node("FastGelu", ["x", "b"], ["y"], domain=MS)], [("x", x), ("b", h(8))], ["y"],
         ms=True)
    case("ms_bias_gelu_f16", [node("BiasGelu", ["x", "b"], ["y"], domain=MS)], [("x", x), ("b", h(8))], ["y"], ms=True)
    case("ms_quick_gelu_f16", [node("QuickGelu", ["x"], ["y"], domain=MS, alpha=1.702)], [("x", x)], ["y"], ms=True)
    case("ms_skip_layer_norm_f16",
         [node("SkipLayerNormalization", ["x", "skip", "g", "b", "sb"], ["y"], domain=MS, epsilon=1e-5)],
         [("x", x), ("skip", h(2, 3, 8)), ("g", h(hidden)), ("b", h(hidden)), ("sb", h(hidden))], ["y"], ms=True)
    ids = rng.integers(0, 11, (2, 3)).astype(np.int32)
    case("ms_embed_layer_norm_f16",
         [node("EmbedLayerNormalization", ["ids", "seg", "we", "pe", "se", "g", "b"], ["y", "mask_index"],
               domain=MS, epsilon=1e-5)],
         [("ids", ids), ("seg", rng.integers(0, 2, (2, 3)).astype(np.int32)), ("we", h(11, hidden)),
          ("pe", h(6, hidden)), ("se", h(2, hidden)), ("g", h(hidden)), ("b", h(hidden))], ["y", "mask_index"],
         ms=True)
    case("ms_attention_f16", [node("Attention", ["x", "w", "b"], ["y"], domain=MS, num_heads=heads)],
         [("x", x), ("w", h(hidden, 3 * hidden, lo=-0.5, hi=0.5)), ("b", h(3 * hidden))], ["y"], ms=True)
    case("ms_multihead_attention_f16",
         [node("MultiHeadAttention", ["q", "k", "v"], ["y"], domain=MS, num_heads=heads)],
         [("q", h(2, 3, hidden)), ("k", h(2, 4, hidden)), ("v", h(2, 4, hidden))], ["y"], ms=True)
    case("ms_fused_matmul_f16", [node("FusedMatMul", ["a", "b"], ["y"], domain=MS, alpha=0.5, transB=1)],
         [("a", h(2, 3, 4)), ("b", h(5, 4))], ["y"], ms=True)

# ---- writing -------------------------------------------------------------------------------------

def build_model(c):
    inits = {t.name: t for t in c["inits"] if t.name}
    graph_inputs = [helper.make_tensor_value_info(n, mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype], a.shape)
                    for n, a in c["inputs"]]
    outputs = [helper.make_empty_tensor_value_info(n) for n in c["outputs"]]  # types filled below
    g = helper.make_graph(c["nodes"], c["name"], graph_inputs, outputs, initializer=list(inits.values()))
    imports = [helper.make_opsetid("", c["opset"])]
    if c["ms"]:
        imports.append(helper.make_opsetid(MS, 1))
    m = helper.make_model(g, opset_imports=imports, producer_name="moss-make-conformance-cases")
    m.ir_version = 8
    return m


def ort_tensor(a):
    if a.dtype == object:  # strings
        return {"type": "string", "dims": list(a.shape), "strings": [str(x) for x in a.reshape(-1)]}
    return {"type": NP_TO_ORT[a.dtype.type], "dims": list(a.shape),
            "b64": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()}


def np_of(o):
    if o["type"] == "string":
        return np.array(o["strings"], dtype=object).reshape(o["dims"])
    return np.frombuffer(base64.b64decode(o["b64"]), ORT_TO_NP[o["type"]]).reshape(o["dims"])


def ort_eval(models, modules):
    req = [{"model": path, "inputs": {n: ort_tensor(a) for n, a in inputs}} for path, inputs in models]
    env = dict(os.environ, NODE_PATH=modules)
    p = subprocess.run(["node", os.path.join(ROOT, "tools", "ort_eval.js")], input=json.dumps(req),
                       capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != 0:
        sys.exit(f"ort_eval.js failed: {p.stderr.strip()}")
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ort-modules", default=os.path.join(ROOT, "bench", "engine", "ort", "node_modules"))
    ap.add_argument("--only", default="*")
    args = ap.parse_args()
    opset18_21_cases()
    extra_cases()
    contrib_cases()
    spatial_cases()
    string_cases()
    contrib_half_cases()
    todo = [c for c in CASES if fnmatch.fnmatch(c["name"], args.only)]
    staged = []
    for c in todo:
        d = os.path.join(OUT, c["name"])
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "test_data_set_0"))
        m = build_model(c)
        onnx.save(m, os.path.join(d, "model.onnx"))
        staged.append((c, d, m))
    results = ort_eval([(os.path.join(d, "model.onnx"), c["inputs"]) for c, d, _ in staged], args.ort_modules)
    bad = 0
    for (c, d, m), r in zip(staged, results):
        if "error" in r:
            print(f"{c['name']}: ONNX Runtime refused: {r['error']}")
            shutil.rmtree(d)
            bad += 1
            continue
        # Declare the output types ORT produced (shapes left open), then save the data.
        for o, vi in zip(r["outputs"], m.graph.output):
            vi.CopyFrom(helper.make_tensor_value_info(o["name"], TensorProto.STRING if o["type"] == "string" else
                                                      mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(ORT_TO_NP[o["type"]])],
                                                      None))
        onnx.save(m, os.path.join(d, "model.onnx"))
        for i, (n, a) in enumerate(c["inputs"]):
            with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(a, n).SerializeToString())
        for i, o in enumerate(r["outputs"]):
            a = np_of(o)
            with open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(a, o["name"]).SerializeToString())
        print(f"{c['name']}: ok")
    print(f"{len(staged) - bad} cases written to {os.path.relpath(OUT, ROOT)}, {bad} refused")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
