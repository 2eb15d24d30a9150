// absl::Time / absl::Duration <-> google.protobuf Timestamp / Duration.
#pragma once

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace greenlight {

inline absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}
inline google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  int64_t s = absl::ToUnixSeconds(t);
  absl::Duration rem = t - absl::FromUnixSeconds(s);
  if (rem < absl::ZeroDuration()) {
    --s;
    rem += absl::Seconds(1);
  }
  ts.set_seconds(s);
  ts.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(rem)));
  return ts;
}
inline absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}
inline google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  google::protobuf::Duration out;
  int64_t s = absl::IDivDuration(d, absl::Seconds(1), &d);
  out.set_seconds(s);
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return out;
}

}  // namespace greenlight
