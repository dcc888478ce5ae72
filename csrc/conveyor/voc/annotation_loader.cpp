#include "conveyor/voc/annotation_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "conveyor/core/error.h"

namespace conveyor::voc {
namespace {

constexpr std::size_t kChunk = 64;  // files per unit of work

struct Failure {
  std::size_t index = static_cast<std::size_t>(-1);
  ErrorKind kind = ErrorKind::kAnnotation;
  std::string message;
};

// Reads a whole file into `out`; returns an error message ("" on success).
std::string read_file(const std::string& path, std::string& out, ErrorKind& kind) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    kind = errno == ENOENT ? ErrorKind::kNotFound : ErrorKind::kIo;
    return (errno == ENOENT ? "annotation file not found: " : "cannot open annotation file ") +
           path + (errno == ENOENT ? "" : std::string(": ") + std::strerror(errno));
  }
  struct stat info;
  std::string error;
  if (::fstat(fd, &info) != 0 || S_ISDIR(info.st_mode)) {
    kind = ErrorKind::kIo;
    error = "cannot read annotation file " + path + ": not a regular file";
  } else {
    out.resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    while (true) {
      if (done == out.size()) out.resize(out.size() + 4096);  // the file grew, or st_size was 0
      const ssize_t n = ::read(fd, &out[done], out.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        kind = ErrorKind::kIo;
        error = "cannot read annotation file " + path + ": " + std::strerror(errno);
        break;
      }
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    out.resize(done);
  }
  ::close(fd);
  return error;
}

// Runs `parse_one(index, batch, failure_message, failure_kind) -> bool` over [0, count) in
// chunks on `threads` threads and concatenates the per-chunk batches in order.
AnnotationBatch run_parallel(
    std::size_t count, int threads,
    const std::function<bool(std::size_t, AnnotationBatch&, std::string&, ErrorKind&)>& parse_one) {
  const std::size_t chunks = (count + kChunk - 1) / kChunk;
  if (std::min<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)), chunks) <= 1) {
    // One thread: straight into the result (no per-chunk batches to join afterwards).
    AnnotationBatch result;
    std::string message;
    ErrorKind kind = ErrorKind::kAnnotation;
    for (std::size_t i = 0; i < count; ++i)
      if (!parse_one(i, result, message, kind)) throw Error(kind, message);
    return result;
  }
  std::vector<AnnotationBatch> parts(chunks);
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> first_bad{static_cast<std::size_t>(-1)};
  std::mutex failure_mutex;
  Failure failure;

  auto worker = [&]() {
    std::string message;
    ErrorKind kind = ErrorKind::kAnnotation;
    while (true) {
      const std::size_t chunk = next.fetch_add(1);
      if (chunk >= chunks) return;
      const std::size_t begin = chunk * kChunk;
      if (begin > first_bad.load()) return;  // an earlier file already failed
      const std::size_t end = std::min(count, begin + kChunk);
      AnnotationBatch& batch = parts[chunk];
      for (std::size_t i = begin; i < end; ++i) {
        if (parse_one(i, batch, message, kind)) continue;
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (i < failure.index) {
          failure = {i, kind, message};
          first_bad.store(i);
        }
        break;
      }
    }
  };

  const int n = std::min<int>(threads, static_cast<int>(chunks));  // >= 2 here
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(n - 1));
  for (int t = 1; t < n; ++t) pool.emplace_back(worker);
  worker();
  for (auto& thread : pool) thread.join();
  if (!failure.message.empty()) throw Error(failure.kind, failure.message);

  AnnotationBatch result;
  std::size_t objects = 0;
  for (const auto& part : parts) objects += part.num_objects();
  result.boxes.reserve(objects * 4);
  result.labels.reserve(objects);
  for (auto& part : parts) result.append(std::move(part));
  return result;
}

}  // namespace

int resolve_thread_count(int requested, std::size_t items) {
  if (requested > 0) return requested;
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const auto useful = static_cast<int>((items + kChunk - 1) / kChunk);
  return std::max(1, std::min(hardware, useful));
}

AnnotationBatch load_annotation_files(const std::vector<std::string>& paths,
                                      const ClassTable& classes, int num_threads) {
  const int threads = resolve_thread_count(num_threads, paths.size());
  auto parse_one = [&](std::size_t i, AnnotationBatch& batch, std::string& message,
                       ErrorKind& kind) {
    thread_local std::string bytes;
    message = read_file(paths[i], bytes, kind);
    if (!message.empty()) return false;
    ParseStatus status;
    if (parse_voc_annotation(bytes, false, classes, batch, status)) return true;
    kind = ErrorKind::kAnnotation;
    message = status.describe(paths[i]);
    return false;
  };
  return run_parallel(paths.size(), threads, parse_one);
}

AnnotationBatch parse_annotation_documents(const std::vector<std::string_view>& documents,
                                           const ClassTable& classes, int num_threads,
                                           const std::vector<bool>* is_unicode) {
  const int threads = resolve_thread_count(num_threads, documents.size());
  auto parse_one = [&](std::size_t i, AnnotationBatch& batch, std::string& message,
                       ErrorKind& kind) {
    ParseStatus status;
    const bool unicode = is_unicode != nullptr && (*is_unicode)[i];
    if (parse_voc_annotation(documents[i], unicode, classes, batch, status)) return true;
    kind = ErrorKind::kAnnotation;
    message = status.describe("document " + std::to_string(i));
    return false;
  };
  return run_parallel(documents.size(), threads, parse_one);
}

}  // namespace conveyor::voc
