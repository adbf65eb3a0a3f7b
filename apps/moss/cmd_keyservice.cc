// KeyService commands (docs/keyservice.md): `moss user register`, `moss model upload-key |
// rotate-key | retire-key | grant | revoke | grants`, `moss request-key add | delete`,
// `moss audit [--head]`, `moss keyservice recovery-key new | recover` (the operator's recovery
// path of a replicated KeyService).
// Each takes --config (else $MOSS_CLIENT_CONFIG, else ~/.config/moss/client.json); the KeyService
// is attested against the config's policy before anything is sent.
#include "apps/moss/command.h"
#include "client/client_config.h"
#include "client/keyservice_client.h"
#include "client/request_key_file.h"
#include "crypto/model_key_file.h"
#include "common/file_util.h"
#include "crypto/random.h"
#include "crypto/recovery_export.h"

#include <cstdio>

namespace moss::cli {
namespace {

struct Common {
  std::string config;
};

void add_config_option(CLI::App* cmd, Common& c) {
  cmd->add_option("--config", c.config, "Client config file (else $MOSS_CLIENT_CONFIG, else ~/.config/moss/client.json)");
}

Result<client::ClientConfig> load(const Common& c) {
  return client::load_client_config(c.config.empty() ? std::nullopt
                                                     : std::optional<std::filesystem::path>(c.config));
}

Result<client::KeyServiceClient> connect(const client::ClientConfig& config) {
  MOSS_ASSIGN_OR_RETURN(auto ks, client::KeyServiceClient::create(config));
  MOSS_RETURN_IF_ERROR(ks.connect());
  if (const attest::Claims* claims = ks.keyservice_claims(); claims && claims->simulated()) {
    std::fprintf(stderr, "warning: the KeyService runs in a SIMULATED TEE (allowed by the client config)\n");
  }
  return ks;
}

// "--model digits" means the caller's own model; "--model <owner>/<name>" is taken as is.
std::string full_model_id(const client::KeyServiceClient& ks, const std::string& model) {
  return model.find('/') == std::string::npos ? ks.principal_id() + "/" + model : model;
}

void print(const nlohmann::json& j) { std::printf("%s\n", j.dump(2).c_str()); }

void register_user(CLI::App& root) {
  CLI::App* user = root.add_subcommand("user", "Principals at the KeyService");
  user->require_subcommand(1);
  auto c = std::make_shared<Common>();
  CLI::App* reg = user->add_subcommand("register", "Register this identity (proof of possession); prints the principal id");
  add_config_option(reg, *c);
  bind(reg, [c]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto config, load(*c));
    MOSS_ASSIGN_OR_RETURN(auto ks, connect(config));
    MOSS_ASSIGN_OR_RETURN(auto j, ks.register_self());
    std::printf("%s\n", ks.principal_id().c_str());
    std::fprintf(stderr, "%s\n", j.value("created", false) ? "registered" : "already registered");
    return Status::Ok();
  });
}

void register_model_keys(CLI::App& model) {
  for (bool rotate : {false, true}) {
    auto c = std::make_shared<Common>();
    auto key_file = std::make_shared<std::string>();
    CLI::App* cmd = model.add_subcommand(
        rotate ? "rotate-key" : "upload-key",
        rotate ? "Add a new model key version (old versions stay released until retired)"
               : "Upload the model key written by `moss model encrypt --key-out`");
    add_config_option(cmd, *c);
    cmd->add_option("--key", *key_file, "Model key file (moss-model-key JSON)")->required();
    bind(cmd, [c, key_file, rotate]() -> Status {
      MOSS_ASSIGN_OR_RETURN(auto config, load(*c));
      MOSS_ASSIGN_OR_RETURN(crypto::ModelKey key, crypto::read_model_key_file(*key_file));
      MOSS_ASSIGN_OR_RETURN(auto ks, connect(config));
      MOSS_ASSIGN_OR_RETURN(auto j, ks.put_model_key(key.model_id, key.key.span(), rotate));
      print(j);
      return Status::Ok();
    });
  }
  auto c = std::make_shared<Common>();
  auto model_name = std::make_shared<std::string>();
  auto version = std::make_shared<uint32_t>(0);
  CLI::App* retire = model.add_subcommand("retire-key", "Stop releasing one model key version");
  add_config_option(retire, *c);
  retire->add_option("--model", *model_name, "Model id (or name of your own model)")->required();
  retire->add_option("--version", *version, "Key version")->required();
  bind(retire, [c, model_name, version]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto config, load(*c));
    MOSS_ASSIGN_OR_RETURN(auto ks, connect(config));
    MOSS_ASSIGN_OR_RETURN(auto j, ks.retire_model_key(full_model_id(ks, *model_name), *version));
    print(j);
    return Status::Ok();
  });
}

void register_grants(CLI::App& model) {
  for (bool revoke : {false, true}) {
    auto c = std::make_shared<Common>();
    auto args = std::make_shared<std::array<std::string, 3>>();  // model, user, measurement
    CLI::App* cmd = model.add_subcommand(
        revoke ? "revoke" : "grant",
        revoke ? "Revoke a user's access for a worker measurement"
               : "Grant a user access to a model for a worker measurement");
    add_config_option(cmd, *c);
    cmd->add_option("--model", (*args)[0], "Model id (or name of your own model)")->required();
    cmd->add_option("--user", (*args)[1], "User principal id")->required();
    cmd->add_option("--measurement", (*args)[2], "Worker measurement (hex)")->required();
    bind(cmd, [c, args, revoke]() -> Status {
      MOSS_ASSIGN_OR_RETURN(auto config, load(*c));
      MOSS_ASSIGN_OR_RETURN(auto ks, connect(config));
      std::string model_id = full_model_id(ks, (*args)[0]);
      MOSS_ASSIGN_OR_RETURN(auto j, revoke ? ks.revoke_grant(model_id, (*args)[1], (*args)[2])
                                           : ks.add_grant(model_id, (*args)[1], (*args)[2]));
      print(j);
      return Status::Ok();
    });
  }
  auto c = std::make_shared<Common>();
  auto model_name = std::make_shared<std::string>();
  CLI::App* list = model.add_subcommand("grants", "List the grants of a model");
  add_config_option(list, *c);
  list->add_option("--model", *model_name, "Model id (or name of your own model)")->required();
  bind(list, [c, model_name]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto config, load(*c));
    MOSS_ASSIGN_OR_RETURN(auto ks, connect(config));
    MOSS_ASSIGN_OR_RETURN(auto j, ks.list_grants(full_model_id(ks, *model_name)));
    print(j);
    return Status::Ok();
  });
}

void register_request_key(CLI::App& root) {
  CLI::App* rk = root.add_subcommand("request-key", "Request keys (what your inputs are encrypted under)");
  rk->require_subcommand(1);
  auto c = std::make_shared<Common>();
  auto model_id = std::make_shared<std::string>();
  auto measurement = std::make_shared<std::string>();
  CLI::App* add = rk->add_subcommand(
      "add", "Generate a request key for (model, worker measurement), upload it, save it locally");
  add_config_option(add, *c);
  add->add_option("--model", *model_id, "Model id <owner>/<name>")->required();
  add->add_option("--measurement", *measurement, "Worker measurement (hex)")->required();
  bind(add, [c, model_id, measurement]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto config, load(*c));
    MOSS_ASSIGN_OR_RETURN(auto ks, connect(config));
    MOSS_ASSIGN_OR_RETURN(SecretBytes key, crypto::random_secret(client::kRequestKeyBytes));
    MOSS_ASSIGN_OR_RETURN(auto j, ks.put_request_key(*model_id, *measurement, key.span()));
    client::RequestKeyFile file;
    file.model_id = *model_id;
    file.measurement = *measurement;
    file.key_version = j.value("version", 0u);
    file.key = std::move(key);
    MOSS_RETURN_IF_ERROR(client::write_request_key_file(config, file));
    MOSS_ASSIGN_OR_RETURN(auto path, client::request_key_file_path(config, *model_id));
    print(j);
    std::fprintf(stderr, "request key saved: %s\n", path.c_str());
    return Status::Ok();
  });
  auto dc = std::make_shared<Common>();
  auto del_model = std::make_shared<std::string>();
  auto del_measurement = std::make_shared<std::string>();
  CLI::App* del = rk->add_subcommand("delete", "Delete your request key for (model, measurement) at the KeyService");
  add_config_option(del, *dc);
  del->add_option("--model", *del_model, "Model id <owner>/<name>")->required();
  del->add_option("--measurement", *del_measurement, "Worker measurement (hex)")->required();
  bind(del, [dc, del_model, del_measurement]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto config, load(*dc));
    MOSS_ASSIGN_OR_RETURN(auto ks, connect(config));
    MOSS_ASSIGN_OR_RETURN(auto j, ks.delete_request_key(*del_model, *del_measurement));
    print(j);
    return Status::Ok();
  });
}

void register_audit(CLI::App& root) {
  auto c = std::make_shared<Common>();
  auto model_id = std::make_shared<std::string>();
  auto after = std::make_shared<int64_t>(0);
  auto limit = std::make_shared<int64_t>(100);
  auto head = std::make_shared<bool>(false);
  CLI::App* audit = root.add_subcommand("audit", "Audit events about your models and your keys (JSON)");
  add_config_option(audit, *c);
  audit->add_option("--model", *model_id, "Only this model id");
  audit->add_option("--after", *after, "Events after this sequence number")->capture_default_str();
  audit->add_option("--limit", *limit, "At most this many events (1..1000)")->capture_default_str();
  audit->add_flag("--head", *head,
                  "Print the audit head signed by the KeyService (signature checked); keep it to "
                  "detect a log rewritten or cut later");
  bind(audit, [c, model_id, after, limit, head]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto config, load(*c));
    MOSS_ASSIGN_OR_RETURN(auto ks, connect(config));
    if (*head) {
      MOSS_ASSIGN_OR_RETURN(auto h, ks.audit_head());
      print(h);
      return Status::Ok();
    }
    MOSS_ASSIGN_OR_RETURN(auto j, ks.audit(*model_id, *after, *limit));
    print(j);
    return Status::Ok();
  });
}

// The operator's side of a replicated KeyService's recovery path (docs/keyservice.md,
// "Recovery"): the recovery key pair, and checking or re-sealing an export with it. Restoring
// service is `moss-keyservice --recover <private key>`; the state key never leaves a process here.
void register_recovery(CLI::App& root) {
  CLI::App* ks = root.add_subcommand("keyservice", "Operating a replicated KeyService");
  ks->require_subcommand(1);
  CLI::App* rk = ks->add_subcommand("recovery-key", "The operator's recovery key pair");
  rk->require_subcommand(1);
  auto out = std::make_shared<std::string>();
  auto bits = std::make_shared<int>(crypto::kMinRecoveryKeyBits);
  CLI::App* made = rk->add_subcommand(
      "new", "Make an RSA recovery key pair: DIR/recovery-private.pem (0600; keep it offline) and "
             "DIR/recovery-public.pem (give it to the first replica: --recovery-public-key)");
  made->add_option("--out", *out, "Directory to write the key pair to")->required();
  made->add_option("--bits", *bits, "RSA modulus size (at least 3072)")->capture_default_str();
  bind(made, [out, bits]() -> Status {
    const std::filesystem::path dir = *out;
    if (std::filesystem::exists(dir / "recovery-private.pem")) {
      return already_exists("{} exists; not overwriting a recovery key", (dir / "recovery-private.pem").string());
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    MOSS_ASSIGN_OR_RETURN(auto key, crypto::RecoveryPrivateKey::generate(*bits));
    MOSS_ASSIGN_OR_RETURN(SecretBytes pem, key.private_pem());
    MOSS_RETURN_IF_ERROR(write_file(dir / "recovery-private.pem", pem.span(), 0600));
    MOSS_ASSIGN_OR_RETURN(std::string public_pem, key.public_pem());
    MOSS_RETURN_IF_ERROR(write_text_file(dir / "recovery-public.pem", public_pem));
    std::printf("%s\n", key.fingerprint().c_str());
    return Status::Ok();
  });

  auto private_key = std::make_shared<std::string>();
  auto export_file = std::make_shared<std::string>();
  auto reseal_to = std::make_shared<std::string>();
  auto reseal_out = std::make_shared<std::string>();
  CLI::App* recover = ks->add_subcommand(
      "recover", "Check that a recovery export opens with the recovery private key (prints its "
                 "prefix and key fingerprint), or re-seal it to a new recovery public key");
  recover->add_option("--recovery-key", *private_key, "The recovery private key (PEM)")->required();
  recover->add_option("--export", *export_file, "recovery.json written by the first replica")->required();
  recover->add_option("--reseal-to", *reseal_to, "A new recovery public key (PEM) to seal the state key to");
  recover->add_option("--out", *reseal_out, "With --reseal-to: where to write the new export");
  bind(recover, [private_key, export_file, reseal_to, reseal_out]() -> Status {
    if (reseal_to->empty() != reseal_out->empty()) return invalid_argument("--reseal-to and --out go together");
    MOSS_ASSIGN_OR_RETURN(auto key, crypto::RecoveryPrivateKey::load(*private_key));
    MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(*export_file, 64 * 1024));
    MOSS_ASSIGN_OR_RETURN(auto exported, crypto::RecoveryExport::parse(text));
    MOSS_ASSIGN_OR_RETURN(SecretBytes state_key, exported.open(key));
    if (!reseal_to->empty()) {
      MOSS_ASSIGN_OR_RETURN(auto next, crypto::RecoveryPublicKey::load(*reseal_to));
      MOSS_ASSIGN_OR_RETURN(auto resealed, crypto::RecoveryExport::seal(next, exported.prefix, state_key));
      MOSS_RETURN_IF_ERROR(write_text_file(*reseal_out, resealed.to_json()));
      std::printf("prefix %s: re-sealed to recovery key %s\n", exported.prefix.c_str(),
                  next.fingerprint().c_str());
      return Status::Ok();
    }
    std::printf("prefix %s: the export opens with recovery key %s\n", exported.prefix.c_str(),
                key.fingerprint().c_str());
    return Status::Ok();
  });
}

}  // namespace

void register_keyservice_commands(CLI::App& root, CLI::App& model) {
  register_recovery(root);
  register_user(root);
  register_model_keys(model);
  register_grants(model);
  register_request_key(root);
  register_audit(root);
}

}  // namespace moss::cli
