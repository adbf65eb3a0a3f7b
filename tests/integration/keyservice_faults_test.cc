// KeyService high availability under load (issue 18, quick mode of the fault run in
// tests/support/keyservice_fault_run.h): 3 moss-keyservice replicas over a 3-member etcd on
// loopback, grants and revokes from 2 owner clients and a revoker, releases from 3 workers, every
// client failing over across the replicas; kill -9 of a replica, kill -9 of an etcd member, a
// replica cut off from etcd, everything killed and restarted. No acknowledged write is lost, no
// release succeeds after an acknowledged revoke, the audit chain verifies, and every phase serves
// writes and releases. The figures are printed; bench/keyservice (--faults) runs the long version.
// Skipped, with the reason, when etcd is not installed.
#include "integration/keyservice_process.h"
#include "support/keyservice_fault_run.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

namespace moss {
namespace {

TEST(KeyServiceFaultsTest, NothingAcknowledgedIsLostThroughReplicaEtcdAndPartitionFaults) {
  if (test_support::EtcdProcess::binary().empty()) GTEST_SKIP() << test_support::EtcdProcess::kMissing;
  test_support::TempDir dir("moss-ksfaults");
  test_support::KeyServiceClusterOptions co;
  co.bin_dir = kstest::bin_dir();
  co.dir = dir.path();
  auto cluster = test_support::KeyServiceCluster::start(co);
  ASSERT_TRUE(cluster.ok()) << cluster.status().to_string();

  test_support::FaultRunOptions o;
  o.phase_seconds = 2;
  auto run = test_support::run_keyservice_faults(**cluster, o, dir.path());
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  const test_support::FaultRunFigures& f = *run;
  test_support::print_fault_table(f, stdout);

  EXPECT_EQ(f.lost_writes, 0u) << testing::PrintToString(f.lost);
  EXPECT_EQ(f.releases_after_revoke, 0u);
  EXPECT_TRUE(f.audit_verifies) << f.audit;
  ASSERT_EQ(f.phases.size(), 5u);
  for (const test_support::FaultPhase& p : f.phases) {
    EXPECT_GT(p.writes, 0u) << p.name << ": " << testing::PrintToString(p.failures);
    EXPECT_GT(p.releases, 0u) << p.name << ": " << testing::PrintToString(p.failures);
  }
  // The checks had something to check: writes were acknowledged, grants were revoked while
  // workers asked for them, and the replica kill was recovered from.
  EXPECT_GT(f.acknowledged_writes, 20u);
  EXPECT_GT(f.acknowledged_revokes, 2u);
  EXPECT_GT(f.refused_after_revoke, 0u);
  EXPECT_GE(f.phases[1].recover_ms, 0) << "a client was not served again after the replica kill: "
                                       << testing::PrintToString(f.phases[1].failures);
}

}  // namespace
}  // namespace moss
