#include "conveyor/runtime/engine.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>

#include "conveyor/core/image.h"
#include "conveyor/ops/geometry_plan.h"
#include "conveyor/runtime/padded_slot.h"
#include "conveyor/sampling/sample_random.h"

namespace conveyor {
namespace {

// Most bytes of free per-sample buffers kept for reuse (variable-size pipelines).
constexpr size_t kSampleBufferBytes = size_t{256} << 20;
// A padded slot at most this many times its image's pixels gets its padding from the worker.
constexpr uint64_t kWorkerPaddingRatio = 4;

}  // namespace

Engine::Engine(const std::vector<OpSpec>& ops, EngineSources sources, const EngineOptions& options)
    : pipeline_(compile_pipeline(ops)), sources_(std::move(sources)), options_(options) {
  if (options_.num_threads < 0)
    throw Error(ErrorKind::kInvalidArgument,
                "num_threads must be >= 0, got " + std::to_string(options_.num_threads));
  if (options_.prefetch < 1)
    throw Error(ErrorKind::kInvalidArgument,
                "prefetch must be >= 1, got " + std::to_string(options_.prefetch));
  sources_.validate();
  source_sizes_.assign(sources_.size(), {0, 0});
  for (size_t i = 0; i < sources_.source_sizes.size() / 2; ++i)
    source_sizes_[i] = {sources_.source_sizes[2 * i], sources_.source_sizes[2 * i + 1]};
  pool_ = std::make_shared<BufferPool>(static_cast<size_t>(options_.prefetch) * 2 + 2);
  const size_t workers = static_cast<size_t>(options_.num_threads);
  // Variable sizes: each image gets its own buffer, recycled once Python dropped it. The free
  // list holds what a few batches in flight use (bounded in bytes too: images can be large).
  std::shared_ptr<BufferPool> sample_buffers;
  if (!pipeline_.fixed_size)
    sample_buffers = std::make_shared<BufferPool>((static_cast<size_t>(options_.prefetch) + 2) * 32,
                                                  kSampleBufferBytes);
  for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i)
    processors_.push_back(std::make_unique<SampleProcessor>(pipeline_, sources_, options_.seed,
                                                            options_.dct_scaling, sample_buffers));
  for (size_t i = 0; i < workers; ++i) threads_.emplace_back([this, i] { worker_loop(i); });
}

Engine::~Engine() { close(); }

void Engine::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  idle_cv_.notify_all();
  for (std::thread& thread : threads_)
    if (thread.joinable()) thread.join();
  std::lock_guard<std::mutex> lock(mutex_);
  threads_.clear();
  in_flight_.clear();
  distributing_.reset();
  fed_.clear();
  epoch_active_ = false;
}

size_t Engine::sample_image_bytes() const {
  if (!pipeline_.fixed_size) return 0;
  return static_cast<size_t>(pipeline_.fixed_size->first) * pipeline_.fixed_size->second * 3 *
         dtype_size(pipeline_.dtype);
}

uint64_t Engine::start_epoch(uint64_t epoch, IndexBatches batches, int64_t start_batch,
                             int pad_to_multiple) {
  if (start_batch < 0)
    throw Error(ErrorKind::kInvalidArgument,
                "start_batch must be >= 0, got " + std::to_string(start_batch));
  if (pad_to_multiple < 0)
    throw Error(ErrorKind::kInvalidArgument,
                "pad_to_multiple must be >= 0, got " + std::to_string(pad_to_multiple));
  batches.validate(sources_.size());
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) throw Error(ErrorKind::kRuntime, "the engine is closed");
  const uint64_t ticket = cancel_locked(lock);
  if (stopping_) throw Error(ErrorKind::kRuntime, "the engine is closed");
  // cancel_locked() waited with the lock released: a start_epoch() or cancel() called meanwhile
  // supersedes this one (the last caller wins). Setting up here as well would hand both callers
  // the same ticket and reset the newer epoch under its consumers (test_engine found it).
  if (ticket != generation_) return ticket;
  epoch_ = epoch;
  // a fixed-size batch is one tensor already: the caller pads it if it needs to
  pad_multiple_ = pipeline_.fixed_size ? 0 : pad_to_multiple;
  batches_ = std::move(batches);
  end_batch_ = batches_.num_batches();
  first_batch_ = std::min(start_batch, end_batch_);
  next_to_start_ = next_to_deliver_ = first_batch_;
  delivered_ = 0;
  stats_.batches_ready = 0;
  epoch_active_ = true;
  lock.unlock();
  work_cv_.notify_all();
  ready_cv_.notify_all();  // callers waiting on the cancelled epoch see the new one
  return ticket;
}

uint64_t Engine::cancel_locked(std::unique_lock<std::mutex>& lock) {
  // No new task from the running epoch, then wait for the samples being processed (they may
  // write into fed buffers that the caller frees after this returns).
  const uint64_t generation = ++generation_;
  epoch_active_ = false;
  in_flight_.clear();
  distributing_.reset();  // fed buffers not used yet stay queued for the next epoch
  idle_cv_.wait(lock, [this] { return running_tasks_ == 0 || stopping_; });
  return generation;
}

bool Engine::cancel(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_ || (ticket != 0 && ticket != generation_)) return false;
  cancel_locked(lock);
  stats_.batches_ready = 0;
  lock.unlock();
  ready_cv_.notify_all();  // its waiting next_batch() callers return nullptr
  return true;
}

uint64_t Engine::current_ticket() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return generation_;
}

int64_t Engine::feed_buffer(void* data, size_t bytes) {
  if (!pipeline_.fixed_size)
    throw Error(ErrorKind::kInvalidArgument,
                "feed_buffer needs a pipeline with a fixed output size");
  if (bytes < sample_image_bytes())
    throw Error(ErrorKind::kInvalidArgument,
                "feed_buffer: the buffer has " + std::to_string(bytes) +
                    " bytes, one sample needs " + std::to_string(sample_image_bytes()));
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t id = next_buffer_id_++;
  fed_.push_back({data, bytes, id});
  return id;
}

std::vector<int64_t> Engine::live_buffer_ids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int64_t> ids;
  for (const FedBuffer& fed : fed_) ids.push_back(fed.id);
  for (const auto& [index, work] : in_flight_)
    if (work->buffer_id >= 0) ids.push_back(work->buffer_id);
  return ids;
}

void Engine::start_batch_work(int64_t batch_index) {
  auto work = std::make_shared<BatchWork>();
  work->batch_index = batch_index;
  work->generation = generation_;
  const int64_t begin = batches_.batch_begin(batch_index), end = batches_.batch_end(batch_index);
  const size_t count = static_cast<size_t>(end - begin);
  work->slots.resize(count);
  for (size_t i = 0; i < count; ++i)
    work->slots[i].index = batches_.indices[static_cast<size_t>(begin) + i];
  work->remaining = count;
  if (pipeline_.fixed_size) {
    const size_t bytes = std::max<size_t>(sample_image_bytes() * count, 1);
    if (!fed_.empty() && fed_.front().bytes >= bytes) {
      const FedBuffer fed = fed_.front();
      fed_.pop_front();
      work->images = std::shared_ptr<uint8_t>(static_cast<uint8_t*>(fed.data), [](uint8_t*) {});
      work->buffer_id = fed.id;
    } else {
      work->images = pool_->acquire(bytes);
    }
    if (!sources_.mask_paths.empty())
      work->masks = pool_->acquire(std::max<size_t>(
          static_cast<size_t>(pipeline_.fixed_size->first) * pipeline_.fixed_size->second * count,
          1));
  }
  work->pad_multiple = pad_multiple_;
  if (pad_multiple_ > 0 && count > 0) plan_padded(*work);
  in_flight_[batch_index] = work;
  if (count == 0) {  // an empty batch (a batch_sampler may yield one) is ready at once
    ++stats_.batches_ready;
    ready_cv_.notify_all();
  } else {
    distributing_ = work;
  }
}

void Engine::plan_padded(BatchWork& work) {
  // The same plan_geometry() with the same draw (seed, epoch, index) as the worker's: the one
  // description of each op's output size. A sample the plan cannot be made for (size unknown
  // until its file is decoded, or a plan that fails and will fail the sample) leaves the
  // whole batch to pad_batch().
  std::vector<std::pair<int, int>> sizes;
  std::vector<float> boxes;
  for (const Slot& slot : work.slots) {
    const auto [width, height] = source_sizes_[static_cast<size_t>(slot.index)];
    // (a size beyond the decoders' pixel limit is a wrong annotation, or a sample that fails)
    if (width <= 0 || height <= 0 ||
        static_cast<uint64_t>(width) * static_cast<uint64_t>(height) > kDefaultMaxPixels)
      return;
    if (sources_.has_boxes) {
      const int64_t begin = sources_.offsets[static_cast<size_t>(slot.index)];
      const int64_t end = sources_.offsets[static_cast<size_t>(slot.index) + 1];
      boxes.assign(sources_.boxes.begin() + 4 * begin, sources_.boxes.begin() + 4 * end);
    }
    SampleRandom random(options_.seed, epoch_, static_cast<uint64_t>(slot.index));
    try {
      const GeometryPlan plan = plan_geometry(pipeline_.geometric, width, height, random,
                                              sources_.has_boxes ? &boxes : nullptr);
      if (plan.width <= 0 || plan.height <= 0) return;
      sizes.emplace_back(plan.height, plan.width);
    } catch (const Error&) {
      return;
    }
  }
  const auto [pad_height, pad_width] = padded_size(sizes, work.pad_multiple);
  const size_t pixels = static_cast<size_t>(pad_height) * pad_width * work.slots.size();
  try {
    work.images = pool_->acquire(pixels * 3 * dtype_size(pipeline_.dtype));
    if (!sources_.mask_paths.empty()) work.masks = pool_->acquire(pixels);
  } catch (const std::bad_alloc&) {  // (an annotation far larger than its image): unplanned
    work.images.reset();
    return;
  }
  // A worker fills its slot's padding as it writes the image (cache-hot), unless the slot is
  // far larger than its image: then a wrong annotation may have planned the batch, and the
  // padding waits until every size is known to be as planned (else the batch is copied).
  const uint64_t slot_pixels = static_cast<uint64_t>(pad_height) * pad_width;
  for (size_t i = 0; i < work.slots.size(); ++i) {
    const uint64_t image_pixels = static_cast<uint64_t>(sizes[i].first) * sizes[i].second;
    work.slots[i].padded = PaddedSlot{sizes[i].first,
                                      sizes[i].second,
                                      pad_height,
                                      pad_width,
                                      slot_pixels <= kWorkerPaddingRatio * image_pixels,
                                      options_.mask_pad_fill};
  }
  work.pad_height = pad_height;
  work.pad_width = pad_width;
}

bool Engine::take_task(Task& task) {
  if (!epoch_active_ || stopping_) return false;
  while (!distributing_ || distributing_->next_slot == distributing_->slots.size()) {
    distributing_.reset();
    if (next_to_start_ >= end_batch_) return false;
    if (static_cast<int64_t>(in_flight_.size()) >= options_.prefetch) return false;
    start_batch_work(next_to_start_++);
  }
  task.batch = distributing_;
  task.slot = distributing_->next_slot++;
  task.generation = generation_;
  task.epoch = epoch_;
  ++running_tasks_;
  return true;
}

void Engine::run_task(SampleProcessor& processor, Task& task) {
  BatchWork& work = *task.batch;
  Slot& slot = work.slots[task.slot];
  void* image_slot = nullptr;
  uint8_t* mask_slot = nullptr;
  const PaddedSlot* padded = nullptr;
  if (work.pad_height > 0) {
    const size_t pixels = static_cast<size_t>(work.pad_height) * work.pad_width * task.slot;
    image_slot = work.images.get() + pixels * 3 * dtype_size(pipeline_.dtype);
    if (work.masks) mask_slot = work.masks.get() + pixels;
    padded = &slot.padded;
  } else if (pipeline_.fixed_size) {
    image_slot = work.images.get() + sample_image_bytes() * task.slot;
    if (work.masks)
      mask_slot = work.masks.get() + static_cast<size_t>(pipeline_.fixed_size->first) *
                                         pipeline_.fixed_size->second * task.slot;
  }
  try {
    processor.process(slot.index, task.epoch, image_slot, mask_slot, slot.output, padded);
  } catch (const Error& error) {
    slot.failed = true;
    slot.error_kind = error.kind();
    slot.error = error.what();
  } catch (const std::bad_alloc&) {
    slot.failed = true;
    slot.error = "out of memory";
  } catch (const std::exception& error) {
    slot.failed = true;
    slot.error = error.what();
  }
}

void Engine::finish_task(const Task& task) {
  --running_tasks_;
  if (running_tasks_ == 0) idle_cv_.notify_all();
  const Slot& slot = task.batch->slots[task.slot];
  if (slot.output.source_width > 0)  // the file's own size: later batches plan with it
    source_sizes_[static_cast<size_t>(slot.index)] = {slot.output.source_width,
                                                      slot.output.source_height};
  if (task.generation != generation_) return;  // cancelled epoch
  ++stats_.samples_done;
  if (--task.batch->remaining == 0) {
    ++stats_.batches_ready;
    ready_cv_.notify_all();
  }
}

void Engine::worker_loop(size_t worker) {
  SampleProcessor& processor = *processors_[worker];
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    Task task;
    try {
      work_cv_.wait(lock, [&] { return stopping_ || take_task(task); });
    } catch (const std::exception& error) {  // e.g. no memory for a batch buffer
      fatal_error_ = std::string("a worker thread stopped: ") + error.what();
      ready_cv_.notify_all();
      return;
    }
    if (stopping_ && !task.batch) return;
    lock.unlock();
    run_task(processor, task);
    lock.lock();
    finish_task(task);
    task.batch.reset();
    if (stopping_) return;
  }
}

std::unique_ptr<EngineBatch> Engine::next_batch(uint64_t ticket) {
  std::shared_ptr<BatchWork> work;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto started = std::chrono::steady_clock::now();
    for (;;) {
      if (!fatal_error_.empty()) throw Error(ErrorKind::kRuntime, fatal_error_);
      if (ticket != 0 && ticket != generation_) return nullptr;
      if (stopping_ || !epoch_active_ || next_to_deliver_ >= end_batch_ ||
          delivered_ >= end_batch_ - first_batch_)
        return nullptr;
      if (options_.in_order) {
        auto found = in_flight_.find(next_to_deliver_);
        if (found != in_flight_.end() && found->second->remaining == 0) {
          work = found->second;
          in_flight_.erase(found);
          ++next_to_deliver_;
          break;
        }
      } else {
        for (auto it = in_flight_.begin(); it != in_flight_.end(); ++it) {
          if (it->second->remaining == 0) {
            work = it->second;
            in_flight_.erase(it);
            break;
          }
        }
        if (work) break;
      }
      // num_threads == 0: the calling thread does the work, one caller at a time (the
      // processor's decoders and scratch are not shared); other callers wait for its batch
      if (threads_.empty() && !inline_busy_) {
        Task task;
        if (!take_task(task))
          throw Error(ErrorKind::kRuntime, "internal: no sample to process and no batch ready");
        inline_busy_ = true;
        lock.unlock();
        run_task(*processors_[0], task);
        lock.lock();
        inline_busy_ = false;
        finish_task(task);
        ready_cv_.notify_all();
        continue;
      }
      ready_cv_.wait(lock);
    }
    ++delivered_;
    if (!options_.in_order) next_to_deliver_ = first_batch_ + delivered_;
    ++stats_.batches_delivered;
    --stats_.batches_ready;
    stats_.wait_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  work_cv_.notify_all();  // a batch left the window: workers may start the next one
  return assemble(*work);
}

std::unique_ptr<EngineBatch> Engine::assemble(BatchWork& work) {
  auto batch = std::make_unique<EngineBatch>();
  batch->batch_index = work.batch_index;
  batch->dtype = pipeline_.dtype;
  batch->buffer_id = work.buffer_id;
  batch->has_boxes = sources_.has_boxes;
  batch->has_masks = !sources_.mask_paths.empty();
  if (pipeline_.fixed_size) {
    batch->height = pipeline_.fixed_size->first;
    batch->width = pipeline_.fixed_size->second;
  }
  const Slot* first_failure = nullptr;
  for (const Slot& slot : work.slots)
    if (slot.failed) {
      if (!options_.skip_errors) {
        first_failure = &slot;
        break;
      }
    }
  if (first_failure) {
    const std::string& path = sources_.image_paths[static_cast<size_t>(first_failure->index)];
    throw Error(first_failure->error_kind, "sample " + std::to_string(first_failure->index) + " (" +
                                               path + "): " + first_failure->error);
  }
  const size_t image_bytes = sample_image_bytes();
  const size_t mask_bytes =
      pipeline_.fixed_size ? static_cast<size_t>(batch->height) * batch->width : 0;
  const bool padded = work.pad_multiple > 0;
  std::vector<size_t> kept_slots;
  size_t kept = 0;
  if (batch->has_boxes) batch->box_offsets.push_back(0);
  for (size_t i = 0; i < work.slots.size(); ++i) {
    Slot& slot = work.slots[i];
    if (slot.failed) {
      // The reason names the file, as the error on_error="raise" throws does.
      const std::string& path = sources_.image_paths[static_cast<size_t>(slot.index)];
      batch->skipped.push_back(
          {slot.index, path,
           slot.error.find(path) == std::string::npos ? path + ": " + slot.error : slot.error});
      continue;
    }
    if (pipeline_.fixed_size && kept != i) {  // compact over skipped samples
      std::memmove(work.images.get() + image_bytes * kept, work.images.get() + image_bytes * i,
                   image_bytes);
      if (work.masks)
        std::memmove(work.masks.get() + mask_bytes * kept, work.masks.get() + mask_bytes * i,
                     mask_bytes);
    }
    batch->indices.push_back(slot.index);
    kept_slots.push_back(i);
    if (padded) {
      batch->sample_sizes.emplace_back(slot.output.height, slot.output.width);
    } else if (!pipeline_.fixed_size) {
      batch->sample_images.push_back(std::move(slot.output.image));
      batch->sample_masks.push_back(std::move(slot.output.mask));
      batch->sample_sizes.emplace_back(slot.output.height, slot.output.width);
    }
    if (batch->has_boxes) {
      batch->boxes.insert(batch->boxes.end(), slot.output.boxes.begin(), slot.output.boxes.end());
      batch->box_rows.insert(batch->box_rows.end(), slot.output.box_ids.begin(),
                             slot.output.box_ids.end());
      batch->box_offsets.push_back(static_cast<int64_t>(batch->boxes.size() / 4));
    }
    ++kept;
  }
  if (padded) {
    pad_batch(work, kept_slots, *batch);
  } else {
    batch->images = std::move(work.images);
    batch->masks = std::move(work.masks);
  }
  if (!batch->skipped.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.samples_skipped += batch->skipped.size();
  }
  return batch;
}

void Engine::pad_batch(BatchWork& work, const std::vector<size_t>& kept, EngineBatch& batch) {
  if (kept.empty()) {  // nothing to pad: an empty list of images, as for any empty batch
    batch.sample_sizes.clear();
    return;
  }
  const auto [height, width] = padded_size(batch.sample_sizes, work.pad_multiple);
  const size_t value_size = dtype_size(pipeline_.dtype);
  const size_t pixels = static_cast<size_t>(height) * width;
  const size_t planned_pixels = static_cast<size_t>(work.pad_height) * work.pad_width;
  bool in_place = height == work.pad_height && width == work.pad_width;
  for (size_t i : kept) in_place = in_place && work.slots[i].output.in_slot;
  size_t copied = 0;
  if (in_place) {  // every sample in its slot as planned: its padding, then close the gaps
    for (size_t k = 0; k < kept.size(); ++k) {
      const auto [h, w] = batch.sample_sizes[k];
      if (!work.slots[kept[k]].padded.fill_padding)
        fill_slot_padding(work.images.get() + pixels * 3 * value_size * kept[k], 3, h, w, height,
                          width, value_size, 0);
      if (work.masks && !work.slots[kept[k]].padded.fill_padding)
        fill_slot_padding(work.masks.get() + pixels * kept[k], 1, h, w, height, width, 1,
                          options_.mask_pad_fill);
      if (kept[k] == k) continue;
      std::memmove(work.images.get() + pixels * 3 * value_size * k,
                   work.images.get() + pixels * 3 * value_size * kept[k], pixels * 3 * value_size);
      if (work.masks)
        std::memmove(work.masks.get() + pixels * k, work.masks.get() + pixels * kept[k], pixels);
    }
    batch.images = std::move(work.images);
    batch.masks = std::move(work.masks);
  } else {  // a size not known or not as planned when the batch started (or a skip shrank it)
    batch.images = pool_->acquire(pixels * kept.size() * 3 * value_size);
    if (batch.has_masks) batch.masks = pool_->acquire(pixels * kept.size());
    for (size_t k = 0; k < kept.size(); ++k) {
      const SampleOutput& output = work.slots[kept[k]].output;
      const auto [h, w] = batch.sample_sizes[k];
      ImageLayout layout{3, h, w, static_cast<size_t>(w), static_cast<size_t>(h)};
      const uint8_t* image = output.image.get();
      const uint8_t* mask = output.mask.get();
      if (output.in_slot) {  // in its planned slot: rows of the planned width
        layout.row_values = static_cast<size_t>(work.pad_width);
        layout.plane_rows = static_cast<size_t>(work.pad_height);
        image = work.images.get() + planned_pixels * 3 * value_size * kept[k];
        if (work.masks) mask = work.masks.get() + planned_pixels * kept[k];
      } else {
        ++copied;
      }
      copy_into_padded_slot(image, layout, value_size,
                            batch.images.get() + pixels * 3 * value_size * k, height, width, 0);
      if (batch.masks) {
        layout.channels = 1;
        copy_into_padded_slot(mask, layout, 1, batch.masks.get() + pixels * k, height, width,
                              options_.mask_pad_fill);
      }
    }
  }
  batch.height = height;
  batch.width = width;
  batch.padded = true;
  if (copied > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.samples_repadded += copied;
  }
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace conveyor
