// Files of the agent's state directory: reading small records, writing them
// atomically (tmp, fsync, rename, fsync of the directory), creating private
// directories, and the job id rule that makes an id safe as a path element.
// Used by the agent and by the ProcessRunner (not by the supervisor, which
// must stay async-signal-safe; see supervisor.h).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace greenlight::agent {

inline constexpr size_t kMaxJobIdLength = 128;

// strerror text of an errno value.
std::string ErrnoText(int err);
// A status of the errno's code: "<what>: <strerror>".
absl::Status ErrnoStatus(int err, absl::string_view what);

// The whole file; NOT_FOUND when it does not exist, DATA_LOSS beyond
// `max_bytes` (a record that large was not written by us).
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

absl::Status FsyncPath(const std::string& path);

// Writes dir/name atomically: dir/name.tmp (mode `mode`), fsync, rename,
// fsync of `dir`. On failure the tmp file is removed and dir/name is as before.
absl::Status WriteFileAtomic(const std::string& dir, const std::string& name,
                             const std::string& text, mode_t mode = 0600);

// mkdir `path` with `mode` (not masked) unless it exists; an existing one
// must be a real directory (a symlink is refused). `created` says which.
absl::Status MakeDir(const std::string& path, mode_t mode, bool* created = nullptr);

// [A-Za-z0-9._-]{1,128}, not "." or "..": safe as one path element.
absl::Status ValidateJobId(const std::string& id);
inline bool ValidJobId(const std::string& id) { return ValidateJobId(id).ok(); }

}  // namespace greenlight::agent
