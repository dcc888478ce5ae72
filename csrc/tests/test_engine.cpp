// The engine end to end on JPEG files written with TurboJPEG: order, determinism across
// thread counts, errors naming the sample, skip mode, restarting and destroying mid-epoch,
// several threads calling next_batch() and start_epoch() at once (run it under TSan too).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "conveyor/core/error.h"
#include "conveyor/runtime/engine.h"
#include "jpeg_file.h"

using namespace conveyor;

namespace {

std::string temp_dir() {
  char pattern[] = "/tmp/conveyor_engine_test_XXXXXX";
  const char* dir = mkdtemp(pattern);
  return dir ? dir : "/tmp";
}

std::string write_jpeg(const std::string& dir, int index, int width, int height) {
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        rgb[(static_cast<size_t>(y) * width + x) * 3 + c] =
            static_cast<uint8_t>((x * (c + 1) + y * 3 + index * 17) & 255);
  return conveyor_test::write_jpeg_file(dir + "/" + std::to_string(index) + ".jpg", rgb, width,
                                        height);
}

std::vector<OpSpec> pipeline() {
  OpSpec rrc;
  rrc.kind = OpKind::kRandomResizedCrop;
  rrc.height = rrc.width = 24;
  OpSpec flip;
  flip.kind = OpKind::kHorizontalFlip;
  OpSpec to_float;
  to_float.kind = OpKind::kToDtype;
  to_float.dtype = DType::kFloat32;
  to_float.scale_values = true;
  return {rrc, flip, to_float};
}

EngineSources sources(const std::string& dir, int count) {
  EngineSources s;
  for (int i = 0; i < count; ++i) s.image_paths.push_back(write_jpeg(dir, i, 40 + i, 30 + 2 * i));
  return s;
}

std::vector<int64_t> in_order(int64_t count) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  return order;
}

// A fixed shuffle (the caller owns the order; any permutation will do).
std::vector<int64_t> shuffled(int64_t count) {
  std::vector<int64_t> order = in_order(count);
  for (size_t i = 0; i < order.size(); ++i) std::swap(order[i], order[(i * 7 + 3) % order.size()]);
  return order;
}

std::vector<std::vector<float>> run_epoch(Engine& engine, uint64_t epoch,
                                          const IndexBatches& batches,
                                          std::vector<int64_t>* order) {
  engine.start_epoch(epoch, batches);
  std::vector<std::vector<float>> images;
  while (auto batch = engine.next_batch()) {
    const float* data = reinterpret_cast<const float*>(batch->images.get());
    images.emplace_back(data, data + batch->indices.size() * 3 * 24 * 24);
    if (order) order->insert(order->end(), batch->indices.begin(), batch->indices.end());
  }
  return images;
}

}  // namespace

TEST_CASE("batches are bit-identical whatever the number of threads") {
  const std::string dir = temp_dir();
  const EngineSources data = sources(dir, 13);
  std::vector<std::vector<float>> reference;
  std::vector<int64_t> reference_order;
  for (int threads : {0, 1, 2, 4}) {
    EngineOptions options;
    options.num_threads = threads;
    options.seed = 5;
    Engine engine(pipeline(), data, options);
    std::vector<int64_t> order;
    auto images = run_epoch(engine, 2, IndexBatches::regular(shuffled(13), 4), &order);
    CHECK(images.size() == 4 && order.size() == 13);
    if (reference.empty()) {
      reference = images;
      reference_order = order;
    } else {
      CHECK(images == reference);
      CHECK(order == reference_order);
    }
  }
  CHECK(reference_order == shuffled(13));  // the order given
}

TEST_CASE("a missing file raises naming the sample; skip mode drops it") {
  const std::string dir = temp_dir();
  EngineSources data = sources(dir, 5);
  data.image_paths[3] = dir + "/nope.jpg";
  EngineOptions options;
  const IndexBatches pairs = IndexBatches::regular(in_order(5), 2);
  {
    Engine engine(pipeline(), data, options);
    engine.start_epoch(0, pairs);
    CHECK(engine.next_batch() != nullptr);
    bool raised = false;
    try {
      engine.next_batch();
    } catch (const Error& error) {
      raised =
          error.kind() == ErrorKind::kNotFound &&
          std::string(error.what()).find("sample 3 (" + dir + "/nope.jpg)") != std::string::npos;
    }
    CHECK(raised);
    auto last = engine.next_batch();
    CHECK(last && last->indices.size() == 1 && last->indices[0] == 4);
  }
  options.skip_errors = true;
  Engine engine(pipeline(), data, options);
  engine.start_epoch(0, pairs);
  engine.next_batch();
  auto batch = engine.next_batch();
  CHECK(batch && batch->indices.size() == 1 && batch->indices[0] == 2);
  CHECK(batch && batch->skipped.size() == 1 && batch->skipped[0].index == 3);
}

TEST_CASE("restarting and destroying mid-epoch never hangs") {
  const std::string dir = temp_dir();
  const EngineSources data = sources(dir, 9);
  for (int threads : {0, 1, 3}) {
    EngineOptions options;
    options.num_threads = threads;
    options.prefetch = 3;
    Engine engine(pipeline(), data, options);
    const IndexBatches pairs = IndexBatches::regular(in_order(9), 2);
    engine.start_epoch(0, pairs);
    engine.next_batch();
    engine.start_epoch(1, pairs, 2);
    auto batch = engine.next_batch();
    CHECK(batch && batch->batch_index == 2);
    engine.start_epoch(2, pairs);
  }  // destroyed with batches in flight
  EngineOptions options;
  Engine engine(pipeline(), data, options);
  engine.close();
  CHECK(engine.next_batch() == nullptr);
  CHECK_THROWS_KIND(engine.start_epoch(0, IndexBatches::regular(in_order(9), 2)),
                    ErrorKind::kRuntime);
}

TEST_CASE("batches of different sizes come back as given, empty ones included") {
  const std::string dir = temp_dir();
  const EngineSources data = sources(dir, 6);
  IndexBatches batches;
  batches.indices = {5, 0, 3, 3, 1, 2, 4};
  batches.offsets = {0, 3, 3, 4, 7};
  for (int threads : {0, 2}) {
    EngineOptions options;
    options.num_threads = threads;
    Engine engine(pipeline(), data, options);
    engine.start_epoch(0, batches);
    std::vector<std::vector<int64_t>> got;
    while (auto batch = engine.next_batch()) got.push_back(batch->indices);
    CHECK((got == std::vector<std::vector<int64_t>>{{5, 0, 3}, {}, {3}, {1, 2, 4}}));
  }
}

// Several threads share one engine: each batch is handed out exactly once, bit-identical to a
// single-threaded run, and a start_epoch() racing with the consumers never crashes or hangs.
TEST_CASE("concurrent next_batch and start_epoch callers") {
  const std::string dir = temp_dir();
  const EngineSources data = sources(dir, 12);
  const IndexBatches batches = IndexBatches::regular(shuffled(12), 2);
  for (int threads : {0, 1, 3}) {
    EngineOptions options;
    options.num_threads = threads;
    options.seed = 9;
    Engine reference_engine(pipeline(), data, options);
    const auto reference = run_epoch(reference_engine, 1, batches, nullptr);
    Engine engine(pipeline(), data, options);
    for (int round = 0; round < 3; ++round) {
      engine.start_epoch(1, batches);
      std::mutex mutex;
      std::vector<std::pair<int64_t, std::vector<float>>> got;
      std::vector<std::thread> consumers;
      for (int c = 0; c < 4; ++c)
        consumers.emplace_back([&] {
          while (auto batch = engine.next_batch()) {
            const float* pixels = reinterpret_cast<const float*>(batch->images.get());
            std::vector<float> copy(pixels, pixels + batch->indices.size() * 3 * 24 * 24);
            std::lock_guard<std::mutex> lock(mutex);
            got.emplace_back(batch->batch_index, std::move(copy));
          }
        });
      for (std::thread& consumer : consumers) consumer.join();
      std::sort(got.begin(), got.end());
      CHECK(got.size() == reference.size());
      for (size_t b = 0; b < got.size() && b < reference.size(); ++b)
        CHECK(got[b].first == static_cast<int64_t>(b) && got[b].second == reference[b]);
    }
    // start_epoch() from one thread while others consume: no crash, no hang; afterwards the
    // restarted epoch is whole
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> racers;
    for (int c = 0; c < 3; ++c)
      racers.emplace_back([&] {
        while (!stop) try {
            engine.next_batch();
          } catch (...) {
            ++failures;
          }
      });
    for (uint64_t e = 0; e < 20; ++e) engine.start_epoch(e, batches, e % 3);
    stop = true;
    engine.start_epoch(99, IndexBatches::regular({}, 1));  // an empty epoch releases the racers
    for (std::thread& racer : racers) racer.join();
    CHECK(failures == 0);
    std::vector<int64_t> order;
    const auto again = run_epoch(engine, 1, batches, &order);
    CHECK(again == reference && order == shuffled(12));
  }
}

TEST_CASE("tickets: a cancelled epoch's consumers never take a batch of the next one") {
  const std::string dir = temp_dir();
  const EngineSources data = sources(dir, 8);
  const IndexBatches batches = IndexBatches::regular(in_order(8), 2);
  for (int threads : {0, 2}) {
    EngineOptions options;
    options.num_threads = threads;
    Engine engine(pipeline(), data, options);
    const uint64_t first = engine.start_epoch(0, batches);
    CHECK(engine.current_ticket() == first);
    CHECK(engine.next_batch(first) != nullptr);
    const uint64_t second = engine.start_epoch(1, batches);
    CHECK(second != first && engine.current_ticket() == second);
    CHECK(engine.next_batch(first) == nullptr);  // the old epoch's consumer: nothing
    CHECK(!engine.cancel(first));                // and it cannot cancel the new epoch
    auto batch = engine.next_batch(second);
    CHECK(batch && batch->batch_index == 0);
    std::atomic<bool> returned{false};
    std::thread waiter([&] {
      while (engine.next_batch(second)) {
      }
      returned = true;
    });
    CHECK(engine.cancel(second));  // wakes the waiter: its epoch is over
    waiter.join();
    CHECK(returned && engine.next_batch(second) == nullptr);
  }
}

// Every public method from several threads at once (the TSan build checks the locking): threads
// that each restart the epoch and consume it with their ticket, one of them also cancelling.
// A ticketed consumer only ever gets its own epoch's batches, in order (two start_epoch() calls
// overlapping while the first waited for running samples used to share a ticket and reset
// each other's epoch); afterwards the engine still delivers a whole, correct epoch.
TEST_CASE("several threads call start_epoch, next_batch and cancel at once") {
  const std::string dir = temp_dir();
  const EngineSources data = sources(dir, 8);
  const IndexBatches batches = IndexBatches::regular(shuffled(8), 2);
  for (int threads : {0, 2}) {
    EngineOptions options;
    options.num_threads = threads;
    options.seed = 9;
    Engine reference_engine(pipeline(), data, options);
    const auto reference = run_epoch(reference_engine, 1, batches, nullptr);
    Engine engine(pipeline(), data, options);
    std::atomic<int> failures{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t)
      callers.emplace_back([&, t] {
        try {
          for (uint64_t round = 0; round < 6; ++round) {
            const uint64_t ticket = engine.start_epoch(round, batches, round % 2);
            int64_t last = -1;
            while (auto batch = engine.next_batch(ticket)) {
              if (batch->batch_index <= last) ++failures;
              last = batch->batch_index;
              if (t == 3 && batch->batch_index == 2) engine.cancel(ticket);
            }
            engine.current_ticket();
          }
        } catch (...) {
          ++failures;
        }
      });
    for (std::thread& caller : callers) caller.join();
    CHECK(failures == 0);
    std::vector<int64_t> order;
    CHECK(run_epoch(engine, 1, batches, &order) == reference && order == shuffled(8));
  }
}

TEST_MAIN()
