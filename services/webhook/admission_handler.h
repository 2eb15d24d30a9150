// The admission logic behind /validate and /mutate: AdmissionReview v1 JSON
// in, AdmissionReview v1 JSON (or an HTTP error) out. Transport-free, so the
// same code serves the HTTPS server and can be driven directly.
//
// Charging protocol (docs/KUBERNETES.md has the full story):
//  - /mutate admits the object (reserves, unless dryRun) under a fresh
//    request_id "k8s/<namespace>/<Kind>/<review uid>", and patches the
//    request_id, job id and quote into greenlight.dev/* annotations plus the
//    chosen pool's nodeSelector.
//  - /validate admits again with the annotated request_id: the backend
//    deduplicates, so the object is charged once. Without the annotation
//    (mutating webhook not installed) it uses "k8s/<namespace>/<Kind>/<uid>".
//  - UPDATE re-admits only when the derived JobSpec changed (then releases the
//    old job); DELETE releases the job; dryRun never charges or releases.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "services/webhook/admission_backend.h"
#include "services/webhook/workload.h"

namespace greenlight::webhook {

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

enum class Endpoint { kValidate, kMutate };

class AdmissionHandler {
 public:
  // JSON nested deeper than this is refused before parsing (the recursive
  // parser would otherwise exhaust the stack); real objects nest < 20 deep.
  static constexpr int kMaxJsonDepth = 128;

  // `backend` must outlive the handler.
  AdmissionHandler(AdmissionBackend* backend, WebhookLabels labels);

  // Answers one AdmissionReview. 200 with a response for every well-formed
  // review (allowed or denied); 400 text/plain for malformed or unexpected
  // reviews; 500 when the backend could not decide (failurePolicy applies).
  // Never throws.
  HttpReply Handle(Endpoint endpoint, absl::string_view body) const;

 private:
  AdmissionBackend* backend_;
  WebhookLabels labels_;
};

}  // namespace greenlight::webhook
