# Every third-party dependency is a Debian package (tools/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 QUIET)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(Protobuf REQUIRED)
if(MOSS_TESTS)
  find_package(GTest REQUIRED)
endif()
if(MOSS_BENCH)
  find_package(benchmark REQUIRED)
endif()

# CLI11 2.1 on Debian ships a CMake config only in some builds; the header is enough.
if(NOT TARGET CLI11::CLI11)
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE_DIR})
endif()

# The ONNX schema (lite runtime) is compiled from Debian's libonnx-dev onnx.proto, so the engine
# links only protobuf-lite and not the whole ONNX library.
find_file(MOSS_ONNX_PROTO onnx/onnx.proto PATHS /usr/include REQUIRED)

# Debian's oneDNN CMake config requires OpenCL headers (its GPU runtime); we use the CPU engine
# only, so import the library directly.
find_library(MOSS_DNNL_LIBRARY NAMES dnnl REQUIRED)
find_path(MOSS_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp REQUIRED)
add_library(moss::dnnl INTERFACE IMPORTED)
target_link_libraries(moss::dnnl INTERFACE ${MOSS_DNNL_LIBRARY})
target_include_directories(moss::dnnl SYSTEM INTERFACE ${MOSS_DNNL_INCLUDE_DIR})
