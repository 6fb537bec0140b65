#include "bridge/arrow/c_data.h"

#include "bridge/common/testing.h"

namespace bridge::ipc {
namespace {

int g_releases = 0;

void CountingRelease(ArrowArray* array) {
  ++g_releases;
  array->release = nullptr;
}

ArrowArray MakeArray() {
  ArrowArray a{};
  a.length = 3;
  a.release = &CountingRelease;
  return a;
}

TEST(OwnedTest, ReleasesExactlyOnceAcrossMoves) {
  g_releases = 0;
  {
    ArrowArray raw = MakeArray();
    OwnedArray owned(&raw);
    EXPECT_EQ(raw.release, nullptr);  // ownership moved out of the raw struct
    OwnedArray moved = std::move(owned);
    EXPECT_FALSE(owned.valid());
    EXPECT_TRUE(moved.valid());
    EXPECT_EQ(moved->length, 3);
    OwnedArray assigned;
    assigned = std::move(moved);
    EXPECT_EQ(g_releases, 0);
  }
  EXPECT_EQ(g_releases, 1);
}

TEST(OwnedTest, MoveToHandsOwnershipToAConsumer) {
  g_releases = 0;
  ArrowArray raw = MakeArray();
  OwnedArray owned(&raw);
  ArrowArray consumer;
  owned.MoveTo(&consumer);
  EXPECT_FALSE(owned.valid());
  owned.Reset();
  EXPECT_EQ(g_releases, 0);
  consumer.release(&consumer);
  EXPECT_EQ(g_releases, 1);
}

}  // namespace
}  // namespace bridge::ipc
