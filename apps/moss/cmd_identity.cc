// `moss identity new --out DIR [--force]`: creates an Ed25519 identity and prints its principal id.
#include "apps/moss/command.h"
#include "client/identity_files.h"

#include <cstdio>

namespace moss::cli {

void register_identity_commands(CLI::App& root) {
  CLI::App* identity = root.add_subcommand("identity", "Create and inspect identities");
  identity->require_subcommand(1);

  CLI::App* create = identity->add_subcommand(
      "new", "Generate an Ed25519 identity: DIR/identity.pem (0600) and DIR/identity.pub.pem");
  auto out = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  create->add_option("--out", *out, "Directory for the key files")->required();
  create->add_flag("--force", *force, "Replace an existing identity in DIR");
  bind(create, [out, force]() -> Status {
    MOSS_ASSIGN_OR_RETURN(client::IdentityFiles files, client::create_identity(*out, *force));
    std::printf("%s\n", files.principal_id.c_str());
    std::fprintf(stderr, "identity written: %s (private, 0600), %s\n",
                 files.private_path.c_str(), files.public_path.c_str());
    return Status::Ok();
  });
}

}  // namespace moss::cli
