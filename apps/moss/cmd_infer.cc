// `moss infer`: flag parsing only; the logic is in client/infer_client.
#include "apps/moss/command.h"
#include "client/infer_client.h"

#include <iostream>
#include <memory>

namespace moss::cli {

void register_infer_commands(CLI::App& root) {
  struct Flags {
    std::string config, model, output_dir, endpoint, token, save_request, save_response, wire = "binary";
    std::vector<std::string> inputs;
    bool verbose = false;
    int timeout_s = 120;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = root.add_subcommand("infer", "Encrypted inference: encrypt inputs, send, decrypt outputs");
  cmd->add_option("--config", f->config, "client config (default $MOSS_CLIENT_CONFIG, ~/.config/moss/client.json)");
  cmd->add_option("--model", f->model, "model id <owner>/<name>")->required();
  cmd->add_option("--input", f->inputs, "NAME=FILE (.npy or TensorProto .pb), repeatable")->required();
  cmd->add_option("--output-dir", f->output_dir, "directory for <output name>.npy")->required();
  cmd->add_option("--endpoint", f->endpoint, "worker URL, or FnPacker's .../invoke URL")->required();
  cmd->add_option("--token", f->token, "FnPacker bearer token (default $MOSS_PACKER_TOKEN)");
  cmd->add_option("--timeout", f->timeout_s, "seconds to wait for the result")->capture_default_str();
  cmd->add_flag("--verbose,-v", f->verbose, "print the run kind and the worker's timing breakdown");
  cmd->add_option("--wire", f->wire,
                  "request encoding: binary (the envelope as the body) or json (the C3/C4 JSON request)")
      ->capture_default_str();
  cmd->add_option("--save-request", f->save_request, "write the request body as sent (ciphertext) to FILE");
  cmd->add_option("--save-response", f->save_response, "write the response body as received (ciphertext) to FILE");
  bind(cmd, [f]() -> Status {
    client::InferOptions o;
    if (!f->config.empty()) o.config = f->config;
    o.model_id = f->model;
    o.output_dir = f->output_dir;
    o.endpoint = f->endpoint;
    o.token = f->token;
    o.timeout = std::chrono::seconds(f->timeout_s);
    MOSS_ASSIGN_OR_RETURN(o.wire, client::parse_wire(f->wire));
    o.save_request = f->save_request;
    o.save_response = f->save_response;
    for (const std::string& s : f->inputs) {
      const auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0) return invalid_argument("--input '{}' is not NAME=FILE", s);
      o.inputs.emplace_back(s.substr(0, eq), s.substr(eq + 1));
    }
    return client::run_infer_command(o, f->verbose, std::cout);
  });
}

}  // namespace moss::cli
