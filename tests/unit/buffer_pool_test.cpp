// BufferPool: the ring's message buffers go round through it; a buffer taken must be empty, its
// memory reused, and the pool must stay within its bounds.
#define BOOST_TEST_MODULE buffer_pool
#include "common/buffer_pool.hpp"

#include <boost/test/unit_test.hpp>
#include <string>
#include <thread>

using ringtracker::BufferPool;

BOOST_AUTO_TEST_CASE(a_buffer_given_back_is_taken_again_empty_with_its_memory) {
  BufferPool pool;
  BOOST_TEST(pool.take().empty());
  std::string b(3000, 'x');
  const char* memory = b.data();
  const std::size_t capacity = b.capacity();
  pool.give(std::move(b));
  BOOST_TEST(pool.size() == 1U);
  std::string again = pool.take();
  BOOST_TEST(again.empty());
  BOOST_TEST(again.capacity() == capacity);
  BOOST_TEST(static_cast<const void*>(again.data()) == static_cast<const void*>(memory));
  BOOST_TEST(pool.size() == 0U);
  BOOST_TEST(pool.take().capacity() < capacity);  // nothing left: a new, empty string
}

BOOST_AUTO_TEST_CASE(keeps_at_most_its_bound_of_buffers_and_no_huge_or_empty_ones) {
  BufferPool pool;
  pool.give(std::string());                                      // nothing to keep
  pool.give(std::string(BufferPool::kBufferBytesMax + 1, 'h'));  // too big to keep
  BOOST_TEST(pool.size() == 0U);
  for (std::size_t i = 0; i < BufferPool::kBuffersMax + 10; ++i)
    pool.give(std::string(100 + i, 'b'));
  BOOST_TEST(pool.size() == BufferPool::kBuffersMax);
  for (std::size_t i = 0; i < BufferPool::kBuffersMax; ++i) BOOST_TEST(pool.take().empty());
  BOOST_TEST(pool.size() == 0U);
}

// refill() is how a writer or decoder picks up a returned buffer: only a string with nothing in
// it and no memory of its own gets one; a short string with bytes in its inline storage keeps
// them.
BOOST_AUTO_TEST_CASE(refill_gives_a_buffer_only_to_an_empty_string_without_memory) {
  BufferPool pool;
  std::string b(3000, 'x');
  const char* memory = b.data();
  pool.give(std::move(b));
  std::string short_one = "abcde";  // inline bytes, no heap buffer
  pool.refill(short_one);
  BOOST_TEST(short_one == "abcde");
  std::string own;
  own.reserve(500);
  pool.refill(own);
  BOOST_TEST(pool.size() == 1U);  // it has memory of its own
  std::string fresh;
  pool.refill(fresh);
  BOOST_TEST(fresh.empty());
  BOOST_TEST(static_cast<const void*>(fresh.data()) == static_cast<const void*>(memory));
  BOOST_TEST(pool.size() == 0U);
  std::string none;
  pool.refill(none);  // an empty pool leaves it as it is
  BOOST_TEST(none.empty());
}

BOOST_AUTO_TEST_CASE(each_thread_has_its_own_pool) {
  BufferPool& mine = BufferPool::local();
  BOOST_TEST(&mine == &BufferPool::local());
  mine.give(std::string(500, 'm'));
  const std::size_t here = mine.size();
  const BufferPool* theirs = nullptr;
  std::size_t there = 1;
  std::thread([&] {
    theirs = &BufferPool::local();
    there = theirs->size();
  }).join();
  BOOST_TEST(theirs != &mine);
  BOOST_TEST(there == 0U);  // this thread's buffer is not handed to another thread
  BOOST_TEST(mine.size() == here);
  while (mine.size() != 0) (void)mine.take();
}
