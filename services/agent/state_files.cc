#include "services/agent/state_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace greenlight::agent {

std::string ErrnoText(int err) {
  char buf[256];
  return strerror_r(err, buf, sizeof(buf));  // GNU strerror_r
}

absl::Status ErrnoStatus(int err, absl::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(what, ": ", ErrnoText(err)));
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open(\"", path, "\")"));
  std::string out;
  char buf[8192];
  absl::Status status;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      status = ErrnoStatus(errno, absl::StrCat("read(\"", path, "\")"));
      break;
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
    if (out.size() > max_bytes) {
      status = absl::DataLossError(
          absl::StrCat(path, ": larger than ", max_bytes, " bytes; not a record of the agent"));
      break;
    }
  }
  close(fd);
  if (!status.ok()) return status;
  return out;
}

absl::Status FsyncPath(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open(\"", path, "\")"));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return ErrnoStatus(err, absl::StrCat("fsync(\"", path, "\")"));
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::string& dir, const std::string& name,
                             const std::string& text, mode_t mode) {
  const std::string path = absl::StrCat(dir, "/", name);
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open(\"", tmp, "\")"));
  auto fail = [&](int err, absl::string_view call) {
    close(fd);
    unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat(call, "(\"", tmp, "\")"));
  };
  size_t done = 0;
  while (done < text.size()) {
    ssize_t w = write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return fail(errno != 0 ? errno : EIO, "write");
    done += static_cast<size_t>(w);
  }
  if (fsync(fd) != 0) return fail(errno, "fsync");
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("rename(\"", tmp, "\")"));
  }
  return FsyncPath(dir);
}

absl::Status MakeDir(const std::string& path, mode_t mode, bool* created) {
  if (created != nullptr) *created = false;
  if (mkdir(path.c_str(), mode) == 0) {
    if (created != nullptr) *created = true;
    // mkdir applies the umask: set the mode we mean.
    if (chmod(path.c_str(), mode) != 0) {
      return ErrnoStatus(errno, absl::StrCat("chmod(\"", path, "\")"));
    }
    return absl::OkStatus();
  }
  if (errno != EEXIST) return ErrnoStatus(errno, absl::StrCat("mkdir(\"", path, "\")"));
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("lstat(\"", path, "\")"));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a directory (symlinks are refused)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateJobId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("job id is empty");
  if (id.size() > kMaxJobIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("job id \"", id.substr(0, 32), "...\" is longer than ", kMaxJobIdLength));
  }
  const bool chars_ok = std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  if (id == "." || id == ".." || !chars_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid job id \"", id, "\": only [A-Za-z0-9._-] allowed, and not \".\" or \"..\""));
  }
  return absl::OkStatus();
}

}  // namespace greenlight::agent
