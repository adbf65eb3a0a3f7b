// `moss model encrypt` and `moss model decrypt`: the encrypted model file (docs/formats.md).
#include "apps/moss/command.h"
#include "client/model_crypt.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

namespace moss::cli {
namespace {

// Progress only where someone watches it: large files, and stderr a terminal or --progress.
constexpr uint64_t kProgressThreshold = uint64_t{16} << 20;

struct CryptFlags {
  std::string in, out, model_id, key;
  uint32_t chunk_kib = crypto::kDefaultChunkSize >> 10;
  bool progress = false;
  bool force = false;
};

client::ModelCryptOptions options_for(const CryptFlags& f, const char* verb) {
  client::ModelCryptOptions opts;
  opts.chunk_size = f.chunk_kib << 10;
  opts.force = f.force;
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(f.in, ec);
  if (!ec && size > kProgressThreshold && (f.progress || ::isatty(STDERR_FILENO))) {
    opts.progress = client::stderr_progress(fmt::format("{} {}", verb, f.in));
  }
  return opts;
}

}  // namespace

void register_model_crypt_commands(CLI::App& model) {
  auto enc = std::make_shared<CryptFlags>();
  CLI::App* encrypt = model.add_subcommand(
      "encrypt", "Encrypt a model file under a fresh random model key");
  encrypt->add_option("--in", enc->in, "Plaintext model file")->required();
  encrypt->add_option("--out", enc->out, "Encrypted model file to write (FILE.moss)")->required();
  encrypt->add_option("--model-id", enc->model_id, "Model id, e.g. <owner id>/<name>")->required();
  encrypt->add_option("--key-out", enc->key, "Model key file to write (mode 0600)")->required();
  encrypt->add_option("--chunk-kib", enc->chunk_kib, "Chunk size in KiB (1..65536)")
      ->capture_default_str();
  encrypt->add_flag("--progress", enc->progress, "Show progress even when stderr is not a tty");
  encrypt->add_flag("--force", enc->force, "Replace an existing key file");
  bind(encrypt, [enc]() -> Status {
    if (enc->chunk_kib == 0 || enc->chunk_kib > (crypto::kMaxChunkSize >> 10)) {
      return invalid_argument("--chunk-kib must be 1..{}", crypto::kMaxChunkSize >> 10);
    }
    return client::encrypt_model_file(enc->in, enc->out, enc->model_id, enc->key,
                                      options_for(*enc, "encrypting"));
  });

  auto dec = std::make_shared<CryptFlags>();
  CLI::App* decrypt = model.add_subcommand(
      "decrypt", "Decrypt and verify an encrypted model file (output appears only if intact)");
  decrypt->add_option("--in", dec->in, "Encrypted model file (FILE.moss)")->required();
  decrypt->add_option("--key", dec->key, "Model key file")->required();
  decrypt->add_option("--model-id", dec->model_id, "Expected model id")->required();
  decrypt->add_option("--out", dec->out, "Plaintext model file to write")->required();
  decrypt->add_flag("--progress", dec->progress, "Show progress even when stderr is not a tty");
  bind(decrypt, [dec]() -> Status {
    return client::decrypt_model_file(dec->in, dec->key, dec->model_id, dec->out,
                                      options_for(*dec, "decrypting"));
  });
}

}  // namespace moss::cli
