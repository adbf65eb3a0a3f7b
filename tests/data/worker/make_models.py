#!/usr/bin/python3
"""Writes the tiny ONNX models the worker tests use (run: /usr/bin/python3 make_models.py).

linear.onnx:  y = x @ W + b        x float32 [1, 8] -> y float32 [1, 4]
mlp.onnx:     y = relu(x @ W1) @ W2 x float32 [1, 8] -> y float32 [1, 3]
Weights come from a fixed seed, so the files are reproducible.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(20261129)


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


w = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "W")
b = numpy_helper.from_array(rng.standard_normal((4,)).astype(np.float32), "b")
save(helper.make_graph(
    [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
    "linear",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    [w, b]), "linear.onnx")

w1 = numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "W1")
w2 = numpy_helper.from_array(rng.standard_normal((16, 3)).astype(np.float32), "W2")
save(helper.make_graph(
    [helper.make_node("MatMul", ["x", "W1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
     helper.make_node("MatMul", ["r", "W2"], ["y"])],
    "mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    [w1, w2]), "mlp.onnx")
