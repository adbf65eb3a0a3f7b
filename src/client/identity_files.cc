#include "client/identity_files.h"

#include "common/file_util.h"

namespace moss::client {

Result<IdentityFiles> create_identity(const std::filesystem::path& dir, bool force) {
  IdentityFiles files;
  files.private_path = dir / kIdentityPrivateFile;
  files.public_path = dir / kIdentityPublicFile;
  std::error_code ec;
  if (!force && (std::filesystem::exists(files.private_path, ec) ||
                 std::filesystem::exists(files.public_path, ec))) {
    return already_exists("{} already holds an identity (use --force to replace it)",
                          dir.string());
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return internal_error("creating {}: {}", dir.string(), ec.message());
  MOSS_ASSIGN_OR_RETURN(crypto::Identity identity, crypto::Identity::generate());
  MOSS_ASSIGN_OR_RETURN(std::string public_pem, identity.public_key().to_pem());
  // Private first: a public key without its private half would be a useless identity.
  MOSS_RETURN_IF_ERROR(identity.save_private(files.private_path));
  MOSS_RETURN_IF_ERROR(write_text_file(files.public_path, public_pem, 0644));
  files.principal_id = identity.principal_id();
  return files;
}

}  // namespace moss::client
