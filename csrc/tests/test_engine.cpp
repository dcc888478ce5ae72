// The engine end to end on JPEG files written with TurboJPEG: order, determinism across
// thread counts, errors naming the sample, skip mode, restarting and destroying mid-epoch.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
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

std::vector<std::vector<float>> run_epoch(Engine& engine, uint64_t epoch,
                                          std::vector<int64_t>* order) {
  engine.start_epoch(epoch, 0);
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
    options.batch_size = 4;
    options.num_threads = threads;
    options.shuffle = true;
    options.seed = 5;
    Engine engine(pipeline(), data, options);
    CHECK(engine.num_batches() == 4);
    std::vector<int64_t> order;
    auto images = run_epoch(engine, 2, &order);
    CHECK(images.size() == 4 && order.size() == 13);
    if (reference.empty()) {
      reference = images;
      reference_order = order;
    } else {
      CHECK(images == reference);
      CHECK(order == reference_order);
    }
  }
}

TEST_CASE("a missing file raises naming the sample; skip mode drops it") {
  const std::string dir = temp_dir();
  EngineSources data = sources(dir, 5);
  data.image_paths[3] = dir + "/nope.jpg";
  EngineOptions options;
  options.batch_size = 2;
  {
    Engine engine(pipeline(), data, options);
    engine.start_epoch(0, 0);
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
  engine.start_epoch(0, 0);
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
    options.batch_size = 2;
    options.num_threads = threads;
    options.prefetch = 3;
    Engine engine(pipeline(), data, options);
    engine.start_epoch(0, 0);
    engine.next_batch();
    engine.start_epoch(1, 2);
    auto batch = engine.next_batch();
    CHECK(batch && batch->batch_index == 2);
    engine.start_epoch(2, 0);
  }  // destroyed with batches in flight
  EngineOptions options;
  Engine engine(pipeline(), data, options);
  engine.close();
  CHECK(engine.next_batch() == nullptr);
  CHECK_THROWS_KIND(engine.start_epoch(0, 0), ErrorKind::kRuntime);
}

TEST_MAIN()
