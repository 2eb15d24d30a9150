// Reading Pods and Jobs: Kubernetes' effective GPU request, annotations to
// JobSpec with errors naming the annotation, JSON pointer escaping, patches.
#include "services/webhook/workload.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace greenlight::webhook {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json Container(const std::string& name, json gpus, const std::string& restart = "") {
  json c = {{"name", name}, {"image", "busybox"}};
  if (!gpus.is_null()) c["resources"] = {{"limits", {{"nvidia.com/gpu", gpus}}}};
  if (!restart.empty()) c["restartPolicy"] = restart;
  return c;
}

TEST(EffectivePodGpus, FollowsKubernetesInitAndSidecarRules) {
  struct Case {
    std::string name;
    json spec;
    int64_t want;
  };
  const std::vector<Case> cases = {
      {"no gpus", {{"containers", {Container("a", nullptr)}}}, 0},
      {"sum of containers",
       {{"containers", {Container("a", "2"), Container("b", "1"), Container("c", nullptr)}}},
       3},
      {"number instead of string", {{"containers", {Container("a", 4)}}}, 4},
      {"requests win over limits",
       {{"containers",
         {{{"name", "a"},
           {"resources",
            {{"requests", {{"nvidia.com/gpu", "2"}}}, {"limits", {{"nvidia.com/gpu", "2"}}}}}}}}},
       2},
      {"init container larger than the containers",
       {{"initContainers", {Container("warmup", "4")}}, {"containers", {Container("a", "1")}}},
       4},
      {"init container smaller than the containers",
       {{"initContainers", {Container("fetch", "1")}}, {"containers", {Container("a", "2")}}},
       2},
      {"sidecar adds to the containers",
       {{"initContainers", {Container("proxy", "1", "Always")}},
        {"containers", {Container("a", "2")}}},
       3},
      {"init after a sidecar counts the sidecar",
       {{"initContainers", {Container("proxy", "1", "Always"), Container("warmup", "4")}},
        {"containers", {Container("a", "1")}}},
       5},
      {"null resources", {{"containers", {{{"name", "a"}, {"resources", nullptr}}}}}, 0},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> got = EffectivePodGpus(c.spec);
    ASSERT_TRUE(got.ok()) << c.name << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.name;
  }
}

TEST(EffectivePodGpus, RejectsFractionalOrNegativeCountsNamingTheContainer) {
  for (json bad : {json("1.5"), json("500m"), json(-1), json(""), json(true), json("1Gi")}) {
    absl::StatusOr<int64_t> got = EffectivePodGpus({{"containers", {Container("trainer", bad)}}});
    ASSERT_FALSE(got.ok()) << bad.dump();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("\"trainer\""));
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("whole number"));
  }
}

json GpuPod(json annotations) {
  return {{"metadata", {{"name", "train"}, {"annotations", std::move(annotations)}}},
          {"spec", {{"containers", {Container("a", "2")}}}}};
}

TEST(BuildJobSpec, ReadsEveryAnnotation) {
  json pod = GpuPod({{"greenlight.dev/max-cost-usd", "250.5"},
                     {"greenlight.dev/max-carbon-kg", "40"},
                     {"greenlight.dev/not-before", "2030-01-01T00:00:00Z"},
                     {"greenlight.dev/deadline", "2030-01-02T00:00:00+01:00"},
                     {"greenlight.dev/gpu-type", "H100, A100-80GB"},
                     {"greenlight.dev/regions", "eu-north-1"},
                     {"greenlight.dev/duration", "1h30m"},
                     {"greenlight.dev/checkpointable", "true"},
                     {"greenlight.dev/priority", "-5"},
                     {"greenlight.dev/mode", "greenest"},
                     {"greenlight.dev/job-id", "j-0000000000000001"},
                     {"other.io/x", "ignored"}});
  auto w = ParseWorkload(pod, WorkloadKind::kPod, "team-a");
  ASSERT_TRUE(w.ok()) << w.status();
  auto spec = BuildJobSpec(*w, WebhookLabels{});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->team(), "team-a");
  EXPECT_EQ(spec->name(), "team-a/train");
  EXPECT_EQ(spec->gpus(), 2);
  EXPECT_EQ(spec->max_cost_micros(), 250'500'000);
  EXPECT_EQ(spec->max_carbon_mg(), 40'000'000);
  EXPECT_EQ(spec->not_before().seconds(), 1893456000);
  EXPECT_EQ(spec->deadline().seconds(), 1893456000 + 23 * 3600);
  EXPECT_THAT(spec->gpu_types(), ::testing::ElementsAre("H100", "A100-80GB"));
  EXPECT_THAT(spec->regions(), ::testing::ElementsAre("eu-north-1"));
  EXPECT_EQ(spec->duration().seconds(), 5400);
  EXPECT_TRUE(spec->checkpointable());
  EXPECT_EQ(spec->priority(), -5);
  EXPECT_EQ(spec->mode(), greenlight::v1::PLACEMENT_MODE_GREENEST);
  EXPECT_EQ(spec->labels().at("k8s.kind"), "Pod");
  EXPECT_TRUE(spec->request_id().empty());
}

TEST(BuildJobSpec, RejectsEachBadAnnotationWithItsName) {
  struct Case {
    std::string key;
    std::string value;
  };
  const std::vector<Case> cases = {
      {"greenlight.dev/max-cost-usd", "abc"},
      {"greenlight.dev/max-cost-usd", "-1"},
      {"greenlight.dev/max-cost-usd", "inf"},
      {"greenlight.dev/max-carbon-kg", "1e12"},
      {"greenlight.dev/deadline", "tomorrow"},
      {"greenlight.dev/not-before", "2030-01-01"},
      {"greenlight.dev/gpu-type", "H100,,A100"},
      {"greenlight.dev/regions", ""},
      {"greenlight.dev/duration", "forever"},
      {"greenlight.dev/duration", "10s"},
      {"greenlight.dev/checkpointable", "yes"},
      {"greenlight.dev/priority", "5000"},
      {"greenlight.dev/mode", "fastest"},
      {"greenlight.dev/max-cost", "100"},  // typo of max-cost-usd
  };
  for (const Case& c : cases) {
    json annotations = {{c.key, c.value}};
    if (c.key != "greenlight.dev/duration") annotations["greenlight.dev/duration"] = "1h";
    auto w = ParseWorkload(GpuPod(annotations), WorkloadKind::kPod, "team-a");
    ASSERT_TRUE(w.ok()) << w.status();
    auto spec = BuildJobSpec(*w, WebhookLabels{});
    ASSERT_FALSE(spec.ok()) << c.key << "=" << c.value;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << c.key;
    EXPECT_THAT(std::string(spec.status().message()), HasSubstr(c.key)) << c.key << "=" << c.value;
  }
}

TEST(BuildJobSpec, NeedsAWorkEstimateAndAcceptsActiveDeadlineSeconds) {
  auto w = ParseWorkload(GpuPod(json::object()), WorkloadKind::kPod, "team-a");
  ASSERT_TRUE(w.ok());
  auto spec = BuildJobSpec(*w, WebhookLabels{});
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("greenlight.dev/duration"));

  json pod = GpuPod(json::object());
  pod["spec"]["activeDeadlineSeconds"] = 7200;
  w = ParseWorkload(pod, WorkloadKind::kPod, "team-a");
  ASSERT_TRUE(w.ok());
  spec = BuildJobSpec(*w, WebhookLabels{});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->duration().seconds(), 7200);

  json both =
      GpuPod({{"greenlight.dev/duration", "1h"}, {"greenlight.dev/reference-gpu-hours", "10"}});
  w = ParseWorkload(both, WorkloadKind::kPod, "team-a");
  spec = BuildJobSpec(*w, WebhookLabels{});
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("only one"));
}

TEST(ParseWorkload, JobCountsPodsRunningAtOnce) {
  struct Case {
    json spec_fields;
    int64_t pods;
  };
  const std::vector<Case> cases = {
      {json::object(), 1},
      {{{"parallelism", 4}}, 4},
      {{{"parallelism", 4}, {"completions", 2}}, 2},
      {{{"parallelism", 0}}, 0},
      {{{"parallelism", nullptr}, {"completions", nullptr}}, 1},
  };
  for (const Case& c : cases) {
    json job = {{"metadata", {{"name", "j"}}},
                {"spec", {{"template", {{"spec", {{"containers", {Container("a", "8")}}}}}}}}};
    job["spec"].update(c.spec_fields);
    auto w = ParseWorkload(job, WorkloadKind::kJob, "ns");
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_EQ(w->pods, c.pods) << c.spec_fields.dump();
    EXPECT_EQ(w->total_gpus(), 8 * c.pods);
  }
  json bad = {{"metadata", {{"name", "j"}}}, {"spec", {{"parallelism", -1}, {"template", {}}}}};
  EXPECT_FALSE(ParseWorkload(bad, WorkloadKind::kJob, "ns").ok());
}

TEST(TeamOf, UsesTheConfiguredLabelThenAnnotationThenNamespace) {
  WebhookLabels labels;
  labels.team_label = "example.com/team";
  Workload w;
  w.namespace_name = "ns-a";
  EXPECT_EQ(TeamOf(w, labels), "ns-a");
  w.annotations["example.com/team"] = "from-annotation";
  EXPECT_EQ(TeamOf(w, labels), "from-annotation");
  w.labels["example.com/team"] = "from-label";
  EXPECT_EQ(TeamOf(w, labels), "from-label");
  EXPECT_EQ(TeamOf(w, WebhookLabels{}), "ns-a");
}

TEST(JsonPointerEscape, EscapesTildeAndSlash) {
  EXPECT_EQ(JsonPointerEscape("topology.kubernetes.io/region"), "topology.kubernetes.io~1region");
  EXPECT_EQ(JsonPointerEscape("a~b/c"), "a~0b~1c");
  EXPECT_EQ(JsonPointerEscape("plain"), "plain");
}

TEST(BuildPatch, AppliesToObjectsWithAndWithoutTheMaps) {
  AdmitResult r;
  r.region = "eu-north-1";
  r.instance_type = "p4de.24xlarge";
  r.gpu_product = "NVIDIA-A100-SXM4-80GB";
  std::map<std::string, std::string> ann = {{"greenlight.dev/job-id", "j-1"}};
  WebhookLabels labels;
  const std::vector<json> objects = {
      {{"metadata", {{"name", "bare"}}}, {"spec", {{"containers", json::array()}}}},
      {{"metadata", {{"name", "full"}, {"annotations", {{"keep", "me"}}}}},
       {"spec", {{"containers", json::array()}, {"nodeSelector", {{"disk", "ssd"}}}}}},
      {{"metadata", {{"name", "nulls"}, {"annotations", nullptr}}},
       {"spec", {{"nodeSelector", nullptr}}}},
  };
  for (const json& obj : objects) {
    json patched = obj.patch(BuildPatch(obj, WorkloadKind::kPod, r, ann, labels, true));
    EXPECT_EQ(patched["metadata"]["annotations"]["greenlight.dev/job-id"], "j-1") << obj.dump();
    EXPECT_EQ(patched["spec"]["nodeSelector"]["topology.kubernetes.io/region"], "eu-north-1");
    EXPECT_EQ(patched["spec"]["nodeSelector"]["node.kubernetes.io/instance-type"], "p4de.24xlarge");
    EXPECT_EQ(patched["spec"]["nodeSelector"]["nvidia.com/gpu.product"], "NVIDIA-A100-SXM4-80GB");
  }
  json full = objects[1].patch(BuildPatch(objects[1], WorkloadKind::kPod, r, ann, labels, true));
  EXPECT_EQ(full["metadata"]["annotations"]["keep"], "me");
  EXPECT_EQ(full["spec"]["nodeSelector"]["disk"], "ssd");
  json no_pin = BuildPatch(objects[0], WorkloadKind::kPod, r, ann, labels, false);
  EXPECT_EQ(no_pin.dump().find("nodeSelector"), std::string::npos);
}

}  // namespace
}  // namespace greenlight::webhook
