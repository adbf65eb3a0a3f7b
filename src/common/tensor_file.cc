#include "common/tensor_file.h"

#include "common/npy.h"
#include "common/tensor_proto.h"

#include <cstring>
#include <fstream>

namespace moss {

Result<Tensor> read_tensor_file(const std::filesystem::path& path) {
  char magic[6] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return not_found("reading {}: cannot open file", path.string());
    in.read(magic, sizeof(magic));
  }
  // .npy files always start with \x93NUMPY. Those bytes would open a TensorProto with a
  // deprecated protobuf group, which no ONNX writer produces, so sniffing is unambiguous in
  // practice and a wrong guess still fails as a parse error, never as a wrong tensor.
  if (std::memcmp(magic, "\x93NUMPY", 6) == 0) return read_npy_file(path);
  MOSS_ASSIGN_OR_RETURN(NamedTensor t, read_tensor_proto_file(path));
  return std::move(t.tensor);
}

}  // namespace moss
