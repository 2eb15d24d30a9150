// ErrorInfo / BadRequest payloads on absl::Status (see error_details.h).
#include "common/error_details.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/rpc/error_details.pb.h"

namespace greenlight {
namespace {

// Maps serialize in hash order unless asked: the same error must give the
// same bytes (statuses compare by payload).
std::string Deterministic(const google::protobuf::Message& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

bool ParseInfo(const absl::Status& st, google::rpc::ErrorInfo* info) {
  auto payload = st.GetPayload(kErrorInfoTypeUrl);
  return payload.has_value() && info->ParseFromString(std::string(*payload));
}

}  // namespace

absl::Status WithReason(absl::Status st, absl::string_view reason,
                        const std::map<std::string, std::string>& metadata) {
  if (st.ok()) return st;
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(kErrorDomain);
  for (const auto& [k, v] : metadata) (*info.mutable_metadata())[k] = v;
  st.SetPayload(kErrorInfoTypeUrl, absl::Cord(Deterministic(info)));
  return st;
}

absl::Status InvalidField(absl::string_view field, absl::string_view rule) {
  absl::Status st = absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
  google::rpc::BadRequest bad;
  auto* v = bad.add_field_violations();
  v->set_field(std::string(field));
  v->set_description(std::string(rule));
  st.SetPayload(kBadRequestTypeUrl, absl::Cord(bad.SerializeAsString()));
  return WithReason(std::move(st), reason::kInvalidField, {{"field", std::string(field)}});
}

absl::Status WithFieldViolation(absl::Status st) {
  if (st.code() != absl::StatusCode::kInvalidArgument) return st;
  if (st.GetPayload(kBadRequestTypeUrl).has_value()) return st;
  absl::string_view msg = st.message();
  size_t colon = msg.find(": ");
  if (colon == absl::string_view::npos || colon == 0) return st;
  absl::string_view field = msg.substr(0, colon);
  for (char c : field) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '[' || c == ']';
    if (!ok) return st;  // prose, not a field path
  }
  google::rpc::BadRequest bad;
  auto* v = bad.add_field_violations();
  v->set_field(std::string(field));
  v->set_description(std::string(msg.substr(colon + 2)));
  st.SetPayload(kBadRequestTypeUrl, absl::Cord(bad.SerializeAsString()));
  if (ReasonOf(st).empty()) {
    st = WithReason(std::move(st), reason::kInvalidField, {{"field", std::string(field)}});
  }
  return st;
}

std::string ReasonOf(const absl::Status& st) {
  google::rpc::ErrorInfo info;
  return ParseInfo(st, &info) ? info.reason() : "";
}

std::string ReasonMetadata(const absl::Status& st, const std::string& key) {
  google::rpc::ErrorInfo info;
  if (!ParseInfo(st, &info)) return "";
  auto it = info.metadata().find(key);
  return it == info.metadata().end() ? "" : it->second;
}

std::vector<std::pair<std::string, std::string>> FieldViolations(const absl::Status& st) {
  std::vector<std::pair<std::string, std::string>> out;
  auto payload = st.GetPayload(kBadRequestTypeUrl);
  google::rpc::BadRequest bad;
  if (!payload.has_value() || !bad.ParseFromString(std::string(*payload))) return out;
  for (const auto& v : bad.field_violations()) out.emplace_back(v.field(), v.description());
  return out;
}

}  // namespace greenlight
