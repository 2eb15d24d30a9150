// The writer's transaction: what one batch of commands changes (the store
// batch) and what it asks the executor to do once that batch is durable.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "services/store/store.h"

namespace greenlight::scheduler {

struct Txn {
  store::Batch batch;
  absl::flat_hash_set<std::string> dirty;  // job ids to write
  // Sent to the executor only after the commit (an unacknowledged launch
  // would run a job the store does not know).
  std::vector<std::pair<std::string, absl::Duration>> launches;  // job id, remaining
  std::vector<std::string> kills;
};

}  // namespace greenlight::scheduler
