// The KeyService fault run (issue 18): write load (grants added and revoked) and release load from
// several clients, each holding every replica's URL (failover; each starts at another replica),
// against a KeyServiceCluster of 3 replicas over a 3-member etcd, through one fault after another:
//   steady load;
//   kill -9 of replica 0 (then restarted);
//   kill -9 of etcd member 0 (then restarted);
//   a partition: the only etcd member of the last replica frozen (SIGSTOP; the replica's etcd calls
//     time out after 5 s and it answers 503, so its clients move on), then thawed (12 s longer);
//   restart everything: every replica and every etcd member killed with -9, all started again.
// Figures: acknowledged writes lost (every grant and revoke a client saw acknowledged is checked
// against the state at the end), releases that succeeded although they started after a revoke of
// that grant was acknowledged and ended before it was granted again, whether the audit chain
// verifies (moss-keyservice --verify-audit), per phase the operations served and the failures
// clients saw after failover, and the time until every client was served again after the fault.
// Used by tests/integration/keyservice_faults_test.cc (quick) and bench/keyservice (full).
// Needs moss_client, moss_worker, moss_attest.
#pragma once

#include "client/identity_files.h"
#include "client/keyservice_client.h"
#include "crypto/random.h"
#include "support/keyservice_cluster.h"
#include "support/sim_worker_key_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace moss::test_support {

struct FaultRunOptions {
  double phase_seconds = 2;  // load in each phase after its fault (the partition adds 12 s)
  int writers = 2;           // owner clients adding grants and revoking every second one
  int releasers = 3;         // workers releasing keys
  int users = 6;             // users whose grant is revoked and given back, in turn
  std::chrono::milliseconds revoked_for{300};  // how long each stays revoked
};

struct FaultPhase {
  std::string name;
  double seconds = 0;
  uint64_t writes = 0, write_failures = 0;               // acknowledged; failed after failover
  uint64_t releases = 0, refusals = 0, release_failures = 0;  // refusals: no-grant (revoked)
  double recover_ms = -1;  // fault to every client served again; -1: no fault or not recovered
  int unrecovered = 0;     // load threads not served again by the end of the phase
  std::vector<std::string> failures;  // the first few failures clients saw, for the reader
};

struct FaultRunFigures {
  std::vector<FaultPhase> phases;
  uint64_t acknowledged_writes = 0, lost_writes = 0;
  uint64_t acknowledged_revokes = 0, refused_after_revoke = 0, releases_after_revoke = 0;
  bool audit_verifies = false;
  std::string audit;                     // --verify-audit's output, or why it failed
  double replica_restart_ms = -1;        // a killed replica started again until it serves
  double full_restart_ms = -1;           // everything started again until every replica serves
  std::vector<double> steady_grant_us;   // grant latencies under load, no fault
  std::vector<std::string> lost;         // what was lost, for the reader
};

namespace fault_run_detail {

using Clock = std::chrono::steady_clock;
inline int64_t now_ns() { return Clock::now().time_since_epoch().count(); }

constexpr int kMaxPhases = 8;
// A client may meet the partition twice in one call: its replica's etcd client was on the frozen
// member (5 s timeout, then 503), and the next replica in its list is the cut-off one (5 s more).
constexpr auto kPartitionExtra = std::chrono::seconds(12);

struct PhaseCounters {
  std::atomic<uint64_t> writes{0}, write_failures{0}, releases{0}, refusals{0}, release_failures{0};
};

// A window in which releases for a user must be refused: from the acknowledgement of the revoke
// to the moment the grant is sent again.
struct Revoked {
  int user;
  int64_t acked_ns, regrant_ns;
};
struct Release {
  int user;
  int64_t start_ns, end_ns;
};

class Load {
 public:
  Load(KeyServiceCluster& cluster, const FaultRunOptions& o, const std::filesystem::path& dir)
      : cluster_(cluster), o_(o), dir_(dir), recovered_(static_cast<size_t>(o.writers + o.releasers)) {}

  Status setup() {
    MOSS_RETURN_IF_ERROR(client::create_identity(dir_ / "owner", true).status());
    auto owner = client(0, "owner");
    if (!owner.ok()) return owner.status();
    MOSS_RETURN_IF_ERROR(owner->register_self().status());
    model_ = owner->principal_id() + "/fault-run";
    MOSS_ASSIGN_OR_RETURN(SecretBytes key, crypto::random_secret(32));
    MOSS_RETURN_IF_ERROR(owner->put_model_key(model_, key.span(), false).status());
    for (int j = 0; j <= o_.users; ++j) {  // user o_.users: the one the writers grant to
      const std::string who = fmt::format("user{}", j);
      MOSS_RETURN_IF_ERROR(client::create_identity(dir_ / who, true).status());
      MOSS_ASSIGN_OR_RETURN(auto user, client(static_cast<size_t>(j), who));
      MOSS_RETURN_IF_ERROR(user.register_self().status());
      users_.push_back(user.principal_id());
      if (j == o_.users) break;
      MOSS_ASSIGN_OR_RETURN(SecretBytes rk, crypto::random_secret(32));
      MOSS_RETURN_IF_ERROR(user.put_request_key(model_, cluster_.worker_measurement(), rk.span()).status());
      MOSS_RETURN_IF_ERROR(owner->add_grant(model_, user.principal_id(), cluster_.worker_measurement()).status());
    }
    user_granted_.assign(static_cast<size_t>(o_.users), 1);
    return Status::Ok();
  }

  void start() {
    for (int w = 0; w < o_.writers; ++w) threads_.emplace_back([this, w] { writer(w); });
    for (int r = 0; r < o_.releasers; ++r) threads_.emplace_back([this, r] { releaser(r); });
    threads_.emplace_back([this] { revoker(); });
  }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  void enter_phase(int p) { phase_ = p; }
  // From now on, each load thread notes when an operation it started after this succeeds.
  void arm_recovery() {
    for (auto& r : recovered_) r = 0;
    recovery_since_ = now_ns();
  }
  // Milliseconds from arm_recovery() until the last load thread was served; -1 if one was not.
  double recovered_ms() const {
    int64_t last = 0;
    for (const auto& r : recovered_) {
      if (r.load() == 0) return -1;
      last = std::max(last, r.load());
    }
    return static_cast<double>(last - recovery_since_) / 1e6;
  }
  int unrecovered() const {
    int n = 0;
    for (const auto& r : recovered_) n += r.load() == 0 ? 1 : 0;
    return n;
  }

  void fill(FaultRunFigures& f, int phases) {
    for (int p = 0; p < phases; ++p) {
      const PhaseCounters& c = counters_[static_cast<size_t>(p)];
      FaultPhase& out = f.phases[static_cast<size_t>(p)];
      out.writes = c.writes;
      out.write_failures = c.write_failures;
      out.releases = c.releases;
      out.refusals = c.refusals;
      out.release_failures = c.release_failures;
      out.failures = failures_[static_cast<size_t>(p)];
    }
    f.steady_grant_us = steady_grant_us_;
    f.acknowledged_revokes = revoked_.size();
    for (const Release& r : releases_) {
      for (const Revoked& v : revoked_) {
        if (v.user == r.user && r.start_ns >= v.acked_ns && r.end_ns <= v.regrant_ns) ++f.releases_after_revoke;
      }
    }
    f.refused_after_revoke = refused_in_windows_;
  }

  // Every grant a client saw acknowledged is in the state, every acknowledged revoke is not.
  Status check_writes(FaultRunFigures& f) {
    MOSS_ASSIGN_OR_RETURN(auto owner, client(0, "owner"));
    MOSS_ASSIGN_OR_RETURN(auto listed, owner.list_grants(model_));
    std::set<std::pair<std::string, std::string>> present;
    for (const auto& g : listed["grants"]) {
      present.insert({g["user_id"].get<std::string>(), g["measurement"].get<std::string>()});
    }
    const std::string& writes_user = users_.back();
    for (const auto& [m, granted] : acknowledged_) {
      ++f.acknowledged_writes;
      if (present.count({writes_user, m}) != (granted ? 1u : 0u)) {
        ++f.lost_writes;
        f.lost.push_back(fmt::format("{} {}", granted ? "grant" : "revoke", m));
      }
    }
    for (size_t j = 0; j < user_granted_.size(); ++j) {
      if (user_granted_[j] < 0) continue;  // its last change was not acknowledged
      if (present.count({users_[j], cluster_.worker_measurement()}) != (user_granted_[j] ? 1u : 0u)) {
        ++f.lost_writes;
        f.lost.push_back(fmt::format("{} of user {}", user_granted_[j] ? "grant" : "revoke", j));
      }
    }
    f.acknowledged_writes += revoker_writes_;
    return Status::Ok();
  }

 private:
  Result<client::KeyServiceClient> client(size_t first_replica, const std::string& who) {
    client::ClientConfig c;
    c.keyservice_url = cluster_.urls_from(first_replica % cluster_.size());
    c.keyservice_policy = cluster_.keyservice_policy();
    c.identity = dir_ / who / "identity.pem";
    c.allow_simulated = true;
    c.sim_key_file = cluster_.sim_key();
    return client::KeyServiceClient::create(c);
  }

  PhaseCounters& counters() { return counters_[static_cast<size_t>(phase_.load())]; }
  void failed(const Status& s) {
    std::lock_guard lock(mu_);
    auto& list = failures_[static_cast<size_t>(phase_.load())];
    if (list.size() < 3) list.push_back(s.to_string());
  }
  void served(size_t slot, int64_t started_ns) {
    const int64_t since = recovery_since_.load();
    if (since != 0 && started_ns >= since && recovered_[slot].load() == 0) recovered_[slot] = now_ns();
  }
  bool pause(std::chrono::milliseconds d) {
    const auto until = Clock::now() + d;
    while (!stop_ && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return !stop_;
  }

  void writer(int w) {
    auto c = client(static_cast<size_t>(w), "owner");
    if (!c.ok()) return failed(c.status());
    std::vector<std::pair<std::string, bool>> mine;
    std::vector<double> grant_us;
    for (uint64_t k = 0; !stop_; ++k) {
      const std::string m = fmt::format("{:02x}{:062x}", w, k);  // a measurement of its own
      int64_t t0 = now_ns();
      const int phase = phase_;
      auto granted = c->add_grant(model_, users_.back(), m);
      if (!granted.ok()) {
        ++counters().write_failures;
        failed(granted.status());
        pause(std::chrono::milliseconds(50));
        continue;
      }
      ++counters().writes;
      served(static_cast<size_t>(w), t0);
      if (phase == 0 && phase_ == 0) grant_us.push_back(static_cast<double>(now_ns() - t0) / 1e3);
      if (k % 2 == 0) {
        mine.emplace_back(m, true);
        continue;
      }
      t0 = now_ns();
      auto revoked = c->revoke_grant(model_, users_.back(), m);
      // unknown-grant: a replica applied it, then failed before answering; the resend found it gone.
      if (revoked.ok() || revoked.status().reason() == "unknown-grant") {
        ++counters().writes;
        served(static_cast<size_t>(w), t0);
        mine.emplace_back(m, false);
      } else {
        ++counters().write_failures;
        failed(revoked.status());
        pause(std::chrono::milliseconds(50));
      }
    }
    std::lock_guard lock(mu_);
    acknowledged_.insert(acknowledged_.end(), mine.begin(), mine.end());
    steady_grant_us_.insert(steady_grant_us_.end(), grant_us.begin(), grant_us.end());
  }

  void releaser(int r) {
    const size_t slot = static_cast<size_t>(o_.writers + r);
    auto keys = sim_worker_key_client(cluster_.sim_key(), "worker", cluster_.urls_from(static_cast<size_t>(r)),
                                      cluster_.keyservice_policy());
    if (!keys.ok()) return failed(keys.status());
    std::mt19937 rng(static_cast<unsigned>(r));
    std::vector<Release> mine;
    uint64_t refused_revoked = 0;
    while (!stop_) {
      const int revoked_now = revoked_user_;
      const int j = (rng() % 2 == 0 && revoked_now >= 0) ? revoked_now : static_cast<int>(rng() % users_granted());
      const int64_t t0 = now_ns();
      auto released = (*keys)->release(model_, users_[static_cast<size_t>(j)]);
      const int64_t t1 = now_ns();
      if (released.ok()) {
        ++counters().releases;
        served(slot, t0);
        mine.push_back({j, t0, t1});
      } else if (released.status().reason() == "no-grant") {
        ++counters().refusals;
        served(slot, t0);
        if (j == revoked_now) ++refused_revoked;
      } else {
        ++counters().release_failures;
        failed(released.status());
        pause(std::chrono::milliseconds(50));
      }
    }
    std::lock_guard lock(mu_);
    releases_.insert(releases_.end(), mine.begin(), mine.end());
    refused_in_windows_ += refused_revoked;
  }
  size_t users_granted() const { return user_granted_.size(); }

  // Takes users' grants away and gives them back in turn; a change is retried until it is
  // acknowledged (a revoke answered unknown-grant was applied before a failover).
  void revoker() {
    auto c = client(0, "owner");
    if (!c.ok()) return failed(c.status());
    auto until_acknowledged = [&](auto&& change, const char* gone_reason) -> bool {
      while (!stop_) {
        auto r = change();
        if (r.ok() || (gone_reason != nullptr && r.status().reason() == gone_reason)) {
          ++counters().writes;
          ++revoker_writes_;
          return true;
        }
        ++counters().write_failures;
        failed(r.status());
        pause(std::chrono::milliseconds(50));
      }
      return false;
    };
    const std::string& wm = cluster_.worker_measurement();
    for (int j = 0; !stop_; j = (j + 1) % o_.users) {
      const std::string& user = users_[static_cast<size_t>(j)];
      user_granted_[static_cast<size_t>(j)] = -1;
      if (!until_acknowledged([&] { return c->revoke_grant(model_, user, wm); }, "unknown-grant")) break;
      user_granted_[static_cast<size_t>(j)] = 0;
      const int64_t acked = now_ns();
      revoked_user_ = j;
      pause(o_.revoked_for);
      revoked_user_ = -1;
      const int64_t regrant = now_ns();
      {
        std::lock_guard lock(mu_);
        revoked_.push_back({j, acked, regrant});
      }
      user_granted_[static_cast<size_t>(j)] = -1;
      // add_grant is idempotent: a resend after a failover answers 200.
      if (!until_acknowledged([&] { return c->add_grant(model_, user, wm); }, nullptr)) break;
      user_granted_[static_cast<size_t>(j)] = 1;
    }
  }

  KeyServiceCluster& cluster_;
  const FaultRunOptions o_;
  const std::filesystem::path dir_;
  std::string model_;
  std::vector<std::string> users_;   // users_[o_.users]: the writers' grantee
  std::vector<int> user_granted_;    // 1 granted, 0 revoked, -1 a change not acknowledged (revoker only)
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> phase_{0};
  std::atomic<int> revoked_user_{-1};
  std::atomic<int64_t> recovery_since_{0};
  std::vector<std::atomic<int64_t>> recovered_;
  std::array<PhaseCounters, kMaxPhases> counters_;
  std::array<std::vector<std::string>, kMaxPhases> failures_;
  std::atomic<uint64_t> revoker_writes_{0};
  std::mutex mu_;  // guards what the threads hand over below and failures_
  std::vector<std::pair<std::string, bool>> acknowledged_;  // measurement, granted (else revoked)
  std::vector<double> steady_grant_us_;
  std::vector<Revoked> revoked_;
  std::vector<Release> releases_;
  uint64_t refused_in_windows_ = 0;
};

inline void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }
inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace fault_run_detail

// Runs the faults against `cluster` (3 replicas, 3 etcd members, the last replica pinned to the
// last member); `dir` holds the clients' identities. Leaves the replicas stopped. An error: the
// run could not be set up or a component did not come back (the figures are then incomplete).
inline Result<FaultRunFigures> run_keyservice_faults(KeyServiceCluster& cluster, const FaultRunOptions& o,
                                                     const std::filesystem::path& dir) {
  using namespace fault_run_detail;
  if (cluster.size() < 3 || cluster.etcd().size() < 3) {
    return invalid_argument("the fault run needs 3 replicas over 3 etcd members");
  }
  FaultRunFigures f;
  Load load(cluster, o, dir);
  MOSS_RETURN_IF_ERROR(load.setup());
  const size_t last = cluster.size() - 1, last_member = cluster.etcd().size() - 1;
  int p = 0;
  auto phase = [&](std::string name) {
    load.enter_phase(p);
    f.phases.push_back(FaultPhase{});
    f.phases.back().name = std::move(name);
    return Clock::now();
  };
  auto end_phase = [&](Clock::time_point began, bool fault) {
    f.phases.back().seconds = ms_since(began) / 1e3;
    if (fault) {
      f.phases.back().recover_ms = load.recovered_ms();
      f.phases.back().unrecovered = load.unrecovered();
    }
    ++p;
  };
  Status healed = Status::Ok();
  load.start();
  {
    auto t = phase("steady load");
    sleep_s(o.phase_seconds);
    end_phase(t, false);
  }
  {
    auto t = phase("kill -9 replica 0");
    load.arm_recovery();
    cluster.kill_replica(0);
    sleep_s(o.phase_seconds);
    const auto restart = Clock::now();
    healed = cluster.start_replica(0);
    f.replica_restart_ms = ms_since(restart);
    end_phase(t, true);
  }
  if (healed.ok()) {
    auto t = phase("kill -9 etcd member 0 of 3");
    load.arm_recovery();
    cluster.etcd().stop_member(0, SIGKILL);
    sleep_s(o.phase_seconds);
    if (!cluster.etcd().restart_member(0)) healed = unavailable("etcd member 0 did not come back");
    end_phase(t, true);
  }
  if (healed.ok()) {
    auto t = phase(fmt::format("partition: replica {}'s only etcd member frozen", last));
    load.arm_recovery();
    cluster.etcd().pause_member(last_member);
    sleep_s(o.phase_seconds + std::chrono::duration<double>(kPartitionExtra).count());
    cluster.etcd().resume_member(last_member);
    if (!cluster.etcd().wait_serving(last_member, std::chrono::seconds(30))) {
      healed = unavailable("etcd member {} did not serve after the partition", last_member);
    }
    end_phase(t, true);
  }
  if (healed.ok()) {
    auto t = phase("restart everything (all kill -9)");
    load.arm_recovery();
    for (size_t i = 0; i < cluster.size(); ++i) cluster.kill_replica(i);
    cluster.etcd().stop(SIGKILL);
    const auto restart = Clock::now();
    for (size_t m = 0; m < cluster.etcd().size(); ++m) cluster.etcd().restart_member(m, false);
    for (size_t m = 0; m < cluster.etcd().size() && healed.ok(); ++m) {
      if (!cluster.etcd().wait_serving(m, std::chrono::seconds(60))) {
        healed = unavailable("etcd member {} did not come back", m);
      }
    }
    for (size_t i = 0; i < cluster.size() && healed.ok(); ++i) healed = cluster.start_replica(i);
    f.full_restart_ms = ms_since(restart);
    sleep_s(o.phase_seconds);
    end_phase(t, true);
  }
  load.stop();
  load.fill(f, p);
  if (!healed.ok()) return healed;
  MOSS_RETURN_IF_ERROR(load.check_writes(f));
  for (size_t i = 0; i < cluster.size(); ++i) cluster.stop_replica(i);
  auto audit = cluster.verify_audit(0);
  f.audit_verifies = audit.ok();
  f.audit = audit.ok() ? *audit : audit.status().to_string();
  return f;
}

inline void print_fault_table(const FaultRunFigures& f, std::FILE* out) {
  std::fprintf(out, "%-46s %7s %8s %7s %9s %8s %7s %11s\n", "phase", "seconds", "writes", "w_fail",
               "releases", "refused", "r_fail", "recover_ms");
  for (const FaultPhase& p : f.phases) {
    std::fprintf(out, "%-46s %7.1f %8llu %7llu %9llu %8llu %7llu %11s\n", p.name.c_str(), p.seconds,
                 static_cast<unsigned long long>(p.writes), static_cast<unsigned long long>(p.write_failures),
                 static_cast<unsigned long long>(p.releases), static_cast<unsigned long long>(p.refusals),
                 static_cast<unsigned long long>(p.release_failures),
                 p.recover_ms >= 0    ? fmt::format("{:.0f}", p.recover_ms).c_str()
                 : p.unrecovered > 0 ? fmt::format("({} not)", p.unrecovered).c_str()
                                     : "-");
  }
  for (const FaultPhase& p : f.phases) {
    for (const std::string& failure : p.failures) std::fprintf(out, "  %s: %s\n", p.name.c_str(), failure.c_str());
  }
  std::fprintf(out,
               "acknowledged writes %llu, lost %llu; acknowledged revokes %llu, releases refused inside "
               "them %llu, releases after an acknowledged revoke %llu; audit chain %s\n",
               static_cast<unsigned long long>(f.acknowledged_writes), static_cast<unsigned long long>(f.lost_writes),
               static_cast<unsigned long long>(f.acknowledged_revokes),
               static_cast<unsigned long long>(f.refused_after_revoke),
               static_cast<unsigned long long>(f.releases_after_revoke), f.audit_verifies ? "verifies" : "FAILS");
  std::fprintf(out, "killed replica restarted to serving %.0f ms; everything restarted to serving %.0f ms\n",
               f.replica_restart_ms, f.full_restart_ms);
}

}  // namespace moss::test_support
