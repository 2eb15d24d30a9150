// The Kubernetes AdmissionReview handler (services/webhook/admission_handler.h)
// on arbitrary bodies for /validate and /mutate (first byte), over the fake
// in-memory backend; it must answer every body (never throw or crash), with
// 200 for reviews and 4xx/5xx otherwise.
#include <cstddef>
#include <cstdint>

#include "services/webhook/admission_handler.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/testing/fake_admission_backend.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  greenlight::testing::FakeAdmissionBackend backend;
  backend.AddTeam("ml-research", {50'000'000'000, 16});
  backend.AddTeam("vision", {1'000'000, 2});
  backend.AddPool({"aws/us-east-1/p4d.24xlarge", "us-east-1", "p4d.24xlarge", "A100",
                   "NVIDIA-A100-SXM4-40GB", 4'100'000, 200'000});
  backend.AddPool({"gcp/europe-west4/g2-standard-8", "europe-west4", "g2-standard-8", "L4",
                   "NVIDIA-L4", 900'000, 30'000});
  greenlight::webhook::WebhookLabels labels;
  if (data[0] & 2) labels.team_label = "greenlight.dev/team";
  greenlight::webhook::AdmissionHandler handler(&backend, labels);
  absl::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto endpoint = data[0] & 1 ? greenlight::webhook::Endpoint::kMutate
                              : greenlight::webhook::Endpoint::kValidate;
  greenlight::webhook::HttpReply reply = handler.Handle(endpoint, body);
  GL_FUZZ_CHECK(reply.status == 200 || (reply.status >= 400 && reply.status < 600));
  GL_FUZZ_CHECK(!reply.body.empty());
  // Answering the same review twice charges it once (idempotent admission).
  greenlight::webhook::HttpReply second = handler.Handle(endpoint, body);
  GL_FUZZ_CHECK(second.status == reply.status);
  return 0;
}
