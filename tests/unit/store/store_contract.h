// The Store implementations the contract suite (store_contract_test.cc) runs
// against, each as a StoreFactory. A new implementation joins the suite with
// one more entry in ContractStores() there.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "services/store/memory_store.h"
#include "services/store/sqlite_store.h"
#include "services/store/store.h"

namespace greenlight::store::testing {

struct StoreFactory {
  using OpenFn = std::function<absl::StatusOr<std::unique_ptr<Store>>(const std::string& dir)>;

  // The gtest parameter name: letters, digits and '_' only.
  std::string name;
  // Opens a new, empty store. `dir` is a temporary directory of this test
  // alone, removed when it ends; a file-backed store keeps its files there, a
  // server-backed one (PostgreSQL) can name its database or schema after it.
  OpenFn open;
  // Opens again what `open` created under `dir`, after the previous instance
  // was destroyed: what a restart of greenlightd does. Unset when !durable.
  OpenFn reopen;
  // A reopened store returns everything committed before. The durability
  // cases are skipped for stores that are not.
  bool durable = false;
};

// Lets gtest name the parameter in failure messages instead of dumping bytes.
inline void PrintTo(const StoreFactory& f, std::ostream* os) { *os << f.name; }

// The in-memory store lives and dies with its object: nothing to reopen.
inline StoreFactory MemoryStoreFactory() {
  StoreFactory f;
  f.name = "Memory";
  f.open = [](const std::string&) -> absl::StatusOr<std::unique_ptr<Store>> {
    return std::make_unique<MemoryStore>();
  };
  return f;
}

// SQLite as greenlightd opens it (synchronous=full); reopening is a new
// SqliteStore on the same file.
inline StoreFactory SqliteStoreFactory() {
  StoreFactory f;
  f.name = "Sqlite";
  f.open = [](const std::string& dir) -> absl::StatusOr<std::unique_ptr<Store>> {
    SqliteOptions options;
    options.path = dir + "/greenlight.db";
    options.synchronous = "full";
    auto s = SqliteStore::Open(options);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Store>(std::move(*s));
  };
  f.reopen = f.open;
  f.durable = true;
  return f;
}

}  // namespace greenlight::store::testing
