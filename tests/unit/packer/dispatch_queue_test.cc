#include "packer/dispatch_queue.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string_view>
#include <vector>

namespace moss::packer {
namespace {

struct Queued {
  DispatchQueue::Id id;
  std::string_view model;
  TimeMs deadline_ms = 100;
};

DispatchQueue queue_of(std::initializer_list<Queued> requests) {
  DispatchQueue q;
  for (const Queued& r : requests) q.push(r.id, r.model, r.deadline_ms);
  return q;
}

// One FIFO per model: sizes, the backlog ahead of a request, each model's head.
TEST(DispatchQueueTest, KeepsOneFifoPerModel) {
  DispatchQueue q = queue_of({{1, "o/a"}, {2, "o/b"}, {3, "o/a"}, {4, "o/a"}});
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.size_for("o/a"), 3u);
  EXPECT_EQ(q.size_for("o/c"), 0u);
  EXPECT_EQ(q.ahead_of(1), 0u);
  EXPECT_EQ(q.ahead_of(4), 2u);
  EXPECT_EQ(q.heads(), (std::vector<DispatchQueue::Id>{1, 2}));
  q.remove(1);
  EXPECT_EQ(q.ahead_of(4), 1u);
  EXPECT_EQ(q.heads(), (std::vector<DispatchQueue::Id>{2, 3}));
  EXPECT_EQ(q.model_of(3), "o/a");
  q.remove(3);
  q.remove(4);
  EXPECT_EQ(q.size_for("o/a"), 0u);
  EXPECT_EQ(q.heads(), (std::vector<DispatchQueue::Id>{2}));
}

// A freed slot goes to the oldest request for a model the instance holds, else the oldest of all;
// requests that declined it are skipped.
TEST(DispatchQueueTest, HandsASlotToTheRequestItSuits) {
  DispatchQueue q = queue_of({{1, "o/b"}, {2, "o/a"}, {3, "o/c"}, {4, "o/a"}});
  std::vector<std::string_view> holds_a{"o/x", "o/a"};
  EXPECT_EQ(q.next_for(holds_a), 2u);  // o/a's oldest, though o/b arrived first
  std::vector<std::string_view> holds_c_and_a{"o/c", "o/a"};
  EXPECT_EQ(q.next_for(holds_c_and_a), 2u);  // the older of the two resident heads
  std::vector<std::string_view> holds_none{"o/z"};
  EXPECT_EQ(q.next_for(holds_none), 1u);  // nothing it holds: the oldest of all
  std::vector<DispatchQueue::Id> declined{2};
  EXPECT_EQ(q.next_for(holds_a, declined), 4u);
  DispatchQueue empty;
  EXPECT_FALSE(empty.next_for(holds_a).has_value());
}

// A request within kUrgentMs of its deadline gets the slot before the resident models' queues
// (a rare model's request starved behind a hot model's burst until it failed).
TEST(DispatchQueueTest, AnUrgentRequestGoesAheadOfAffinity) {
  DispatchQueue q = queue_of({{1, "o/hot", 9'000}, {2, "o/rare", 3'000}, {3, "o/hot", 9'000}});
  std::vector<std::string_view> holds_hot{"o/hot"};
  EXPECT_EQ(q.next_for(holds_hot, {}, 0), 1u);  // 3 s left: not urgent yet
  EXPECT_EQ(q.next_for(holds_hot, {}, 3'000 - DispatchQueue::kUrgentMs), 2u);
  std::vector<DispatchQueue::Id> declined{2};
  EXPECT_EQ(q.next_for(holds_hot, declined, 2'500), 1u);  // it declined: affinity again
  EXPECT_EQ(q.next_for(holds_hot), 1u);                   // no time given: affinity only
}

// Requests whose deadline passed are found oldest first; pushing an id twice is a no-op.
TEST(DispatchQueueTest, FindsExpiredRequests) {
  DispatchQueue q = queue_of({{1, "o/a", 50}, {2, "o/b", 10}, {3, "o/a", 500}});
  q.push(3, "o/z", 1);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_TRUE(q.expired(5).empty());
  EXPECT_EQ(q.expired(50), (std::vector<DispatchQueue::Id>{1, 2}));
  q.remove(2);
  q.remove(2);
  EXPECT_EQ(q.expired(1'000), (std::vector<DispatchQueue::Id>{1, 3}));
}

}  // namespace
}  // namespace moss::packer
