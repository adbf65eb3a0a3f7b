// Reading one tensor from a file whose format is recognised from its content: NumPy .npy (by its
// magic bytes) or else a serialized ONNX TensorProto (.pb). For `--input NAME=FILE` style options
// of the CLI. Stateless: thread-safe.
#pragma once

#include "common/status.h"
#include "common/tensor.h"

#include <filesystem>

namespace moss {

// The tensor in `path`; errors name the file and the format that was tried.
Result<Tensor> read_tensor_file(const std::filesystem::path& path);

}  // namespace moss
