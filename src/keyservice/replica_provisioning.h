// Replica key provisioning: how a new KeyService replica of an etcd state obtains the state key
// (replica_state_key.h) from a running one, over mutually attested TLS on the replica port
// (keyservice.replica-listen). Both ends present their attested KeyService certificate (purpose
// "moss-keyservice") and judge the other's against the same replica policy
// (keyservice.replica-policy), in the handshake: a replica whose measurement the policy does not
// admit gets nothing, and a joiner hands its trust to nothing but an admitted replica. The key
// never passes through etcd or the operator in clear.
//
//   POST /v1/replica/state-key  {"prefix": "<etcd prefix>"}  ->  {"state_key": "<base64>"}
// Refusals: 401 unauthenticated (no attested peer), 409 "replica-prefix-mismatch" (the joiner
// asked for another state). The joiner's errors carry "replica-join-failed: ...".
#pragma once

#include "attest/attested_tls.h"
#include "common/secret_bytes.h"
#include "common/status.h"
#include "net/renewable_credentials.h"
#include "net/server.h"

#include <memory>
#include <string>
#include <string_view>

namespace moss::keyservice {

inline constexpr char kReplicaStateKeyPath[] = "/v1/replica/state-key";

// The replica port's server; `peer` judges the joining replica (its purpose is set here).
Result<net::ServerPtr> start_replica_server(std::string host, uint16_t port,
                                            net::RenewableCredentialsPtr credentials,
                                            attest::AttestedPeerConfig peer,
                                            SecretBytes state_key, std::string prefix);

// Asks the replica at `url` (https://host:port, its replica port) for the state key of `prefix`,
// presenting `credentials` and judging the server with `peer`.
Result<SecretBytes> fetch_state_key(std::string_view url, net::RenewableCredentialsPtr credentials,
                                    attest::AttestedPeerConfig peer, std::string_view prefix);

}  // namespace moss::keyservice
