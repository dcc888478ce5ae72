// The engine end to end on JPEG files written with TurboJPEG: order, determinism across
// thread counts, errors naming the sample, skip mode, restarting and destroying mid-epoch,
// several threads calling next_batch() and start_epoch() at once (run it under TSan too).
#include <algorithm>
#include <array>
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
#include "conveyor/runtime/buffer_pool.h"
#include "conveyor/runtime/engine.h"
#include "conveyor/runtime/padded_slot.h"
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

// A pipeline whose output size is each source's (flip, float): what padding is for.
std::vector<OpSpec> variable_pipeline() {
  OpSpec flip;
  flip.kind = OpKind::kHorizontalFlip;
  OpSpec to_float;
  to_float.kind = OpKind::kToDtype;
  to_float.dtype = DType::kFloat32;
  to_float.scale_values = true;
  return {flip, to_float};
}

// A batch's images padded as torchvision's batch_images does: each [3, h, w] image in the
// top-left corner of a zeroed [3, Hp, Wp] slot.
std::vector<float> pad_reference(const EngineBatch& batch, int multiple, int* height, int* width) {
  *height = *width = 0;
  for (const auto& [h, w] : batch.sample_sizes) {
    *height = std::max(*height, (h + multiple - 1) / multiple * multiple);
    *width = std::max(*width, (w + multiple - 1) / multiple * multiple);
  }
  const size_t plane = static_cast<size_t>(*height) * *width;
  std::vector<float> padded(batch.sample_sizes.size() * 3 * plane, 0.0f);
  for (size_t b = 0; b < batch.sample_sizes.size(); ++b) {
    const auto [h, w] = batch.sample_sizes[b];
    const float* image = reinterpret_cast<const float*>(batch.sample_images[b].get());
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < h; ++y)
        std::copy(image + (static_cast<size_t>(c) * h + y) * w,
                  image + (static_cast<size_t>(c) * h + y + 1) * w,
                  padded.data() + (b * 3 + c) * plane + static_cast<size_t>(y) * *width);
  }
  return padded;
}

TEST_CASE("copy_into_padded_slot spreads an image in place as a separate copy does") {
  for (size_t value_size : {1, 2, 4})
    for (const auto& [h, w, slot_h, slot_w] : std::vector<std::array<int, 4>>{{5, 7, 8, 8},
                                                                              {8, 8, 8, 8},
                                                                              {3, 8, 8, 8},
                                                                              {8, 1, 8, 16},
                                                                              {1, 1, 4, 4},
                                                                              {6, 5, 6, 12}}) {
      const size_t image_bytes = static_cast<size_t>(3) * h * w * value_size;
      const size_t slot_bytes = static_cast<size_t>(3) * slot_h * slot_w * value_size;
      std::vector<uint8_t> image(image_bytes);
      for (size_t i = 0; i < image_bytes; ++i) image[i] = static_cast<uint8_t>(i * 7 + 1);
      const ImageLayout layout{3, h, w, static_cast<size_t>(w), static_cast<size_t>(h)};
      std::vector<uint8_t> copied(slot_bytes, 0xAB);
      copy_into_padded_slot(image.data(), layout, value_size, copied.data(), slot_h, slot_w, 9);
      std::vector<uint8_t> in_place(slot_bytes, 0xCD);
      uint8_t* tail = padded_tail(in_place.data(), 3, slot_h, slot_w, h, w, value_size);
      std::memcpy(tail, image.data(), image_bytes);
      copy_into_padded_slot(tail, layout, value_size, in_place.data(), slot_h, slot_w, 9);
      CHECK(in_place == copied);
      std::vector<uint8_t> rows_first(slot_bytes, 0xEF);  // rows now, the padding later
      copy_into_padded_slot(image.data(), layout, value_size, rows_first.data(), slot_h, slot_w,
                            std::nullopt);
      fill_slot_padding(rows_first.data(), 3, h, w, slot_h, slot_w, value_size, 9);
      CHECK(rows_first == copied);
      std::vector<uint8_t> expected(slot_bytes, 9);  // written value by value
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < h; ++y)
          std::memcpy(
              expected.data() + ((static_cast<size_t>(c) * slot_h + y) * slot_w) * value_size,
              image.data() + ((static_cast<size_t>(c) * h + y) * w) * value_size,
              static_cast<size_t>(w) * value_size);
      CHECK(copied == expected);
    }
}

TEST_CASE("padded batches: each sample written into its slot, as padding the samples gives") {
  const std::string dir = temp_dir();
  EngineSources data = sources(dir, 9);  // 40+i x 30+2i: every size differs
  // and a tiny one: its slot is far larger than it, so the engine fills its padding later
  data.image_paths.push_back(write_jpeg(dir, 9, 8, 8));
  IndexBatches batches;
  batches.indices = {4, 0, 7, 2, 8, 9, 1, 6, 3, 5};
  batches.offsets = {0, 4, 4, 6, 10};
  EngineOptions options;
  options.seed = 3;
  Engine reference_engine(variable_pipeline(), data, options);
  reference_engine.start_epoch(1, batches);
  std::vector<std::unique_ptr<EngineBatch>> reference;
  while (auto batch = reference_engine.next_batch()) reference.push_back(std::move(batch));
  CHECK(reference.size() == 4);

  std::vector<int> true_sizes, wrong_sizes;
  for (int i = 0; i < 9; ++i) {
    true_sizes.insert(true_sizes.end(), {40 + i, 30 + 2 * i});
    wrong_sizes.insert(wrong_sizes.end(), {30 + 2 * i, 40 + i});
  }
  true_sizes.insert(true_sizes.end(), {8, 8});
  wrong_sizes.insert(wrong_sizes.end(), {8, 8});  // right: copied only with its batch
  for (const std::vector<int>* sizes :
       {&true_sizes, static_cast<std::vector<int>*>(nullptr), &wrong_sizes}) {
    for (int threads : {0, 2}) {
      EngineSources given = data;
      if (sizes) given.source_sizes = *sizes;
      options.num_threads = threads;
      Engine engine(variable_pipeline(), given, options);
      for (int epoch_run = 0; epoch_run < 2; ++epoch_run) {
        engine.start_epoch(1, batches, 0, 16);
        for (const auto& expected : reference) {
          auto batch = engine.next_batch();
          CHECK(batch != nullptr);
          if (expected->indices.empty()) {
            CHECK(batch->indices.empty() && !batch->images && !batch->padded);
            continue;
          }
          int height = 0, width = 0;
          const std::vector<float> padded = pad_reference(*expected, 16, &height, &width);
          CHECK(batch->padded && batch->height == height && batch->width == width);
          CHECK(batch->sample_sizes == expected->sample_sizes);
          CHECK(batch->indices == expected->indices);
          CHECK(std::memcmp(batch->images.get(), padded.data(), padded.size() * sizeof(float)) ==
                0);
        }
        CHECK(engine.next_batch() == nullptr);
      }
      // planned from the given sizes: nothing copied; unknown or wrong: copied in the first
      // epoch only (the files' sizes are learnt)
      const uint64_t copies = engine.stats().samples_repadded;
      CHECK(copies == (sizes == &true_sizes ? 0u : sizes ? 9u : 10u));
    }
  }
}

TEST_CASE("padded batches: a skipped sample shrinks its batch's padding") {
  const std::string dir = temp_dir();
  EngineSources data = sources(dir, 6);
  for (int i = 0; i < 6; ++i)
    data.source_sizes.insert(data.source_sizes.end(), {40 + i, 30 + 2 * i});
  std::remove(data.image_paths[5].c_str());  // the largest image of the batch
  EngineOptions options;
  options.skip_errors = true;
  options.num_threads = 2;
  Engine engine(variable_pipeline(), data, options);
  engine.start_epoch(0, IndexBatches::regular({5, 0, 2, 4}, 4), 0, 8);
  auto batch = engine.next_batch();
  CHECK(batch->skipped.size() == 1 && batch->indices == (std::vector<int64_t>{0, 2, 4}));
  CHECK(batch->height == 40 && batch->width == 48);  // 38 x 44 rounded up, not 40 x 45's
  CHECK((batch->sample_sizes == std::vector<std::pair<int, int>>{{30, 40}, {34, 42}, {38, 44}}));
  const float* pixels = reinterpret_cast<const float*>(batch->images.get());
  for (size_t b = 0; b < 3; ++b) {  // the image in the top-left corner, zeros elsewhere
    const auto [h, w] = batch->sample_sizes[b];
    bool image_set = false, padding_zero = true;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 40; ++y)
        for (int x = 0; x < 48; ++x) {
          const float value = pixels[((b * 3 + c) * 40 + y) * 48 + x];
          if (y < h && x < w)
            image_set = image_set || value != 0.0f;
          else
            padding_zero = padding_zero && value == 0.0f;
        }
    CHECK(image_set && padding_zero);
  }
}

TEST_CASE("buffer pool: reuses a free block up to a quarter larger, within its limits") {
  auto pool = std::make_shared<BufferPool>(2, 3000);
  uint8_t* first = nullptr;
  {
    auto block = pool->acquire(1000);
    first = block.get();
  }  // released: kept for reuse
  {
    auto smaller = pool->acquire(700);  // 1000 is more than a quarter larger: a new block
    CHECK(smaller.get() != first);
  }
  CHECK(pool->free_bytes() == 1700);
  auto reused = pool->acquire(800);  // 1000 <= 800 + 200: the free 1000-byte block
  CHECK(reused.get() == first && pool->free_bytes() == 700);
  pool->acquire(2500);  // released at once, not kept: 700 + 2500 bytes exceed the 3000 allowed
  CHECK(pool->free_bytes() == 700);
  {
    auto a = pool->acquire(100), b = pool->acquire(100);
  }  // both released: only one is kept (two blocks at most)
  CHECK(pool->free_bytes() == 800);
}

TEST_MAIN()
