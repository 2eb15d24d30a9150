// Names of ledger kinds as the stores write them (see store.h).
#include "services/store/store.h"

namespace greenlight::store {
namespace v1 = greenlight::v1;

const char* LedgerKindName(v1::LedgerKind kind) {
  switch (kind) {
    case v1::LEDGER_KIND_RESERVE:
      return "reserve";
    case v1::LEDGER_KIND_ACCRUE:
      return "accrue";
    case v1::LEDGER_KIND_RELEASE:
      return "release";
    case v1::LEDGER_KIND_SETTLE:
      return "settle";
    case v1::LEDGER_KIND_BUDGET:
      return "budget";
    default:
      return "";
  }
}

v1::LedgerKind ParseLedgerKind(const std::string& name) {
  for (auto k : {v1::LEDGER_KIND_RESERVE, v1::LEDGER_KIND_ACCRUE, v1::LEDGER_KIND_RELEASE,
                 v1::LEDGER_KIND_SETTLE, v1::LEDGER_KIND_BUDGET}) {
    if (name == LedgerKindName(k)) return k;
  }
  return v1::LEDGER_KIND_UNSPECIFIED;
}

}  // namespace greenlight::store
