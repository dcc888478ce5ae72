// The engine: native worker threads turn dataset samples into ordered batches.
//
// The caller owns the order: start_epoch() takes the epoch's batches of dataset indices (any
// sizes, runtime/index_batches.h) and the engine returns them, in that order, as batches.
// Work unit = one sample. A worker takes the next (batch, slot) of the epoch, processes it
// end to end (runtime/sample_processor.h) and writes straight into the batch buffer. At most
// `prefetch` batches are started and not yet handed out, so memory is bounded. next_batch()
// returns batches in order (or as soon as ready with in_order = false). start_epoch() cancels
// the running epoch (waiting only for samples already being processed); the destructor stops
// and joins every thread. With num_threads = 0 the calling thread does the work in
// next_batch(). Every public method may be called from several threads at once: concurrent
// next_batch() callers each get a different batch.
//
// Padded batches (start_epoch's pad_to_multiple, for pipelines whose output size varies): when
// a batch starts, the engine plans each sample's output size from its source size (the
// annotation's, or the file's once a worker decoded it) and the sample's random draw, allocates
// the padded [B, 3, Hp, Wp] batch once and the workers write each sample into its slot, padding
// written once. A sample whose size was not known or not as planned gets its own buffer and is
// copied into the batch when it is handed out (the result is the same).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conveyor/core/error.h"
#include "conveyor/ops/op_spec.h"
#include "conveyor/runtime/buffer_pool.h"
#include "conveyor/runtime/index_batches.h"
#include "conveyor/runtime/sample_processor.h"

namespace conveyor {

struct EngineOptions {
  int num_threads = 2;
  int prefetch = 2;
  uint64_t seed = 0;  // with the epoch and the sample index, seeds every random augmentation
  bool in_order = true;
  bool skip_errors = false;
  bool dct_scaling = true;      // decode JPEGs at 1/2..1/8 when the resize allows it
  uint8_t mask_pad_fill = 255;  // padded batches: the masks' padding (images get 0)
};

struct SkippedSample {
  int64_t index;
  std::string path;
  std::string message;
};

struct EngineBatch {
  int64_t batch_index = 0;
  std::vector<int64_t> indices;
  // Fixed output size: `images` holds indices.size() * 3 * height * width values (CHW each);
  // `masks` indices.size() * height * width bytes. Otherwise the per-sample vectors are used.
  int height = 0, width = 0;
  DType dtype = DType::kUint8;
  std::shared_ptr<uint8_t> images, masks;
  int64_t buffer_id = -1;  // a buffer from feed_buffer(), or -1
  std::vector<std::shared_ptr<uint8_t>> sample_images, sample_masks;
  // (height, width) per sample (variable size, and padded batches: the true sizes)
  std::vector<std::pair<int, int>> sample_sizes;
  bool padded = false;  // images [B, 3, height, width] (masks [B, height, width]), each padded
  bool has_boxes = false, has_masks = false;
  std::vector<float> boxes;          // kept boxes, 4 floats each, sample after sample
  std::vector<int64_t> box_rows;     // each kept box's row in EngineSources::boxes
  std::vector<int64_t> box_offsets;  // sample b owns boxes [box_offsets[b], box_offsets[b+1])
  std::vector<SkippedSample> skipped;
};

struct EngineStats {
  uint64_t samples_done = 0;
  uint64_t samples_skipped = 0;
  uint64_t batches_delivered = 0;
  uint64_t batches_ready = 0;  // finished and waiting to be handed out
  double wait_seconds = 0.0;   // time next_batch() spent blocked
  // Padded batches: samples copied into the batch when it was handed out (their size was not
  // known or not as planned when the batch started) instead of written into their slot.
  uint64_t samples_repadded = 0;
};

class Engine {
 public:
  // Throws Error(kInvalidArgument) for a bad pipeline, sources or options.
  Engine(const std::vector<OpSpec>& ops, EngineSources sources, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Pipeline& pipeline() const { return pipeline_; }
  uint64_t dataset_size() const { return sources_.size(); }
  // Bytes of one sample's image in a fixed-size batch (0 when the output size varies).
  size_t sample_image_bytes() const;

  // (Re)starts an epoch over `batches` (validated against the dataset), from batch
  // `start_batch` on (mid-epoch resume; batch_index keeps counting from the epoch's start).
  // `pad_to_multiple` > 0 (pipelines without a fixed output size): padded batches (see above).
  // Returns the epoch's ticket (> 0) for next_batch().
  uint64_t start_epoch(uint64_t epoch, IndexBatches batches, int64_t start_batch = 0,
                       int pad_to_multiple = 0);
  // Ends the epoch of `ticket` (0: whichever runs) unless another start_epoch() replaced it:
  // its batches in progress are dropped, its next_batch() callers get nullptr. Returns whether
  // it cancelled; a newer epoch is never touched.
  bool cancel(uint64_t ticket = 0);
  // The ticket of the latest start_epoch() or cancel(): a consumer whose next_batch(ticket)
  // returned nullptr compares it with its own to tell "my epoch ended" from "it was replaced".
  uint64_t current_ticket() const;
  // Destination for a coming fixed-size batch (FIFO): the next batch that fits in it (a
  // larger batch takes engine memory and leaves it queued). The memory must stay valid until
  // the batch using it is returned, or it is no longer pending after a start_epoch(), or close().
  int64_t feed_buffer(void* data, size_t bytes);
  // Ids of fed buffers the engine may still write: queued, or held by a batch in flight.
  std::vector<int64_t> live_buffer_ids() const;
  // The next batch, or nullptr at the end of the epoch / after close(). A failed sample
  // (on_error = raise) throws Error naming the sample index and file. With a ticket from
  // start_epoch(), only a batch of that epoch: nullptr once another start_epoch() replaced
  // it (a consumer of a cancelled epoch never takes a batch of the next one).
  std::unique_ptr<EngineBatch> next_batch(uint64_t ticket = 0);
  void close();
  EngineStats stats() const;

 private:
  struct Slot {
    int64_t index = 0;
    bool failed = false;
    ErrorKind error_kind = ErrorKind::kRuntime;
    std::string error;
    SampleOutput output;
    PaddedSlot padded;  // planned (padded batches whose sizes were all known)
  };
  struct BatchWork {
    int64_t batch_index = 0;
    uint64_t generation = 0;
    std::vector<Slot> slots;
    size_t next_slot = 0;  // next slot to hand to a worker
    size_t remaining = 0;  // slots not finished
    std::shared_ptr<uint8_t> images, masks;
    int64_t buffer_id = -1;
    int pad_multiple = 0;               // > 0: a padded batch
    int pad_height = 0, pad_width = 0;  // its planned slots (0: not planned, see plan_padded)
  };
  struct Task {
    std::shared_ptr<BatchWork> batch;
    size_t slot = 0;
    uint64_t generation = 0;
    uint64_t epoch = 0;
  };

  void worker_loop(size_t worker);
  bool take_task(Task& task);  // with mutex_ held
  void run_task(SampleProcessor& processor, Task& task);
  void finish_task(const Task& task);          // with mutex_ held
  void start_batch_work(int64_t batch_index);  // with mutex_ held
  // Plans a padded batch's slots and allocates it, when every sample's source size is known.
  void plan_padded(BatchWork& work);  // with mutex_ held
  // The kept samples of a padded batch into `batch`: in their planned slots, or copied.
  void pad_batch(BatchWork& work, const std::vector<size_t>& kept, EngineBatch& batch);
  // Returns the generation it started (generation_ may be newer by then: it waits unlocked).
  uint64_t cancel_locked(std::unique_lock<std::mutex>& lock);
  std::unique_ptr<EngineBatch> assemble(BatchWork& work);

  Pipeline pipeline_;
  EngineSources sources_;
  EngineOptions options_;
  std::shared_ptr<BufferPool> pool_;
  std::vector<std::unique_ptr<SampleProcessor>> processors_;  // one per worker (+1 inline)
  std::vector<std::thread> threads_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_, idle_cv_;
  bool stopping_ = false;
  bool epoch_active_ = false;
  uint64_t generation_ = 0;
  uint64_t epoch_ = 0;
  IndexBatches batches_;
  int pad_multiple_ = 0;  // this epoch's pad_to_multiple
  // (width, height) of each source image: the annotations', replaced by the file's once decoded
  std::vector<std::pair<int, int>> source_sizes_;
  int64_t end_batch_ = 0;  // batches in this epoch
  int64_t next_to_start_ = 0;
  int64_t next_to_deliver_ = 0;  // in_order: the batch next_batch() waits for
  int64_t delivered_ = 0, first_batch_ = 0;
  std::shared_ptr<BatchWork> distributing_;
  std::map<int64_t, std::shared_ptr<BatchWork>> in_flight_;
  size_t running_tasks_ = 0;
  bool inline_busy_ = false;  // num_threads == 0: a caller is processing in processors_[0]
  struct FedBuffer {
    void* data;
    size_t bytes;
    int64_t id;
  };
  std::deque<FedBuffer> fed_;
  int64_t next_buffer_id_ = 0;
  EngineStats stats_;
  std::string fatal_error_;  // set when a worker could not go on; next_batch() raises it
};

}  // namespace conveyor
