// ValidateJobSpec / ValidateTeam / ValidatePools / ValidateCarbonSeries and
// the request checks: each bad field is INVALID_ARGUMENT with a message
// naming the field and the rule; good input (also at every limit) passes.
#include "services/scheduler/validation.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// Some cases set the deprecated text fields on purpose (legacy_text.h).
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace greenlight::scheduler {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using v1::JobSpec;

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 3, 10, 8, 0, 0), absl::UTCTimeZone());

ValidationContext Ctx() {
  ValidationContext c;
  c.now = kNow;
  c.canonical_gpu = [](const std::string& n) -> std::string {
    if (n == "A100" || n == "a100" || n == "A100-40GB") return "A100";
    if (n == "H100" || n == "h100") return "H100";
    return "";
  };
  c.region_known = [](const std::string& r) { return r == "eu-central-1" || r == "us-east-1"; };
  c.team_exists = [](const std::string& t) { return t == "ml" || t == "cv"; };
  return c;
}

JobSpec ValidSpec() {
  JobSpec s;
  s.set_team("ml");
  s.set_name("resnet50-imagenet");
  s.set_gpus(8);
  s.add_gpu_types("A100");
  s.set_reference_gpu_hours(64);
  s.set_max_cost_micros(500'000'000);
  s.set_max_carbon_mg(50'000'000);
  s.add_regions("eu-central-1");
  (*s.mutable_labels())["project"] = "vision";
  s.set_request_id("req-0001");
  return s;
}

void SetDuration(JobSpec& s, int64_t seconds, int32_t nanos = 0) {
  s.mutable_duration()->set_seconds(seconds);
  s.mutable_duration()->set_nanos(nanos);
}

TEST(ValidateJobSpec, RejectsEachBadFieldWithItsName) {
  struct Case {
    std::string name;
    std::function<void(JobSpec&)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"missing team", [](JobSpec& s) { s.clear_team(); }, "spec.team"},
      {"upper-case team", [](JobSpec& s) { s.set_team("ML"); }, "spec.team"},
      {"team starting with '-'", [](JobSpec& s) { s.set_team("-ml"); }, "spec.team"},
      {"team of 64 characters", [](JobSpec& s) { s.set_team(std::string(64, 'a')); }, "spec.team"},
      {"unknown team", [](JobSpec& s) { s.set_team("nobody"); }, "spec.team"},
      {"name of 257 bytes", [](JobSpec& s) { s.set_name(std::string(257, 'n')); }, "spec.name"},
      {"name not UTF-8", [](JobSpec& s) { s.set_name("bad\xff"); }, "spec.name"},
      {"name truncated UTF-8", [](JobSpec& s) { s.set_name("caf\xc3"); }, "spec.name"},
      {"name overlong UTF-8", [](JobSpec& s) { s.set_name("\xc0\xaf"); }, "spec.name"},
      {"name UTF-16 surrogate", [](JobSpec& s) { s.set_name("\xed\xa0\x80"); }, "spec.name"},
      {"name beyond U+10FFFF", [](JobSpec& s) { s.set_name("\xf4\x90\x80\x80"); }, "spec.name"},
      {"name with a NUL byte", [](JobSpec& s) { s.set_name(std::string("run\0one", 7)); },
       "spec.name"},
      {"name with a newline", [](JobSpec& s) { s.set_name("run\nFAKE LOG LINE"); }, "spec.name"},
      {"name with DEL", [](JobSpec& s) { s.set_name("run\x7f"); }, "spec.name"},
      {"name with a C1 control", [](JobSpec& s) { s.set_name("run\xc2\x9b"); }, "spec.name"},
      {"label value with a NUL byte",
       [](JobSpec& s) { (*s.mutable_labels())["project"] = std::string("a\0b", 3); },
       "spec.labels"},
      {"label key with a tab", [](JobSpec& s) { (*s.mutable_labels())["pro\tject"] = "x"; },
       "spec.labels"},
      {"request id with a newline", [](JobSpec& s) { s.set_request_id("r\n1"); },
       "spec.request_id"},
      {"work of 1e-9 GPU-hours", [](JobSpec& s) { s.set_reference_gpu_hours(1e-9); },
       "spec.reference_gpu_hours"},
      {"work under one GPU-minute per GPU (8 GPUs, 0.1 h)",
       [](JobSpec& s) { s.set_reference_gpu_hours(0.1); }, "spec.reference_gpu_hours"},
      {"zero gpus", [](JobSpec& s) { s.set_gpus(0); }, "spec.gpus"},
      {"negative gpus", [](JobSpec& s) { s.set_gpus(-8); }, "spec.gpus"},
      {"4097 gpus", [](JobSpec& s) { s.set_gpus(4097); }, "spec.gpus"},
      {"33 gpu types",
       [](JobSpec& s) {
         for (int i = 0; i < 32; ++i) s.add_gpu_types("H100");
       },
       "spec.gpu_types"},
      {"empty gpu type", [](JobSpec& s) { s.add_gpu_types(""); }, "spec.gpu_types"},
      {"gpu type of 65 bytes", [](JobSpec& s) { s.add_gpu_types(std::string(65, 'x')); },
       "spec.gpu_types"},
      {"unknown gpu type", [](JobSpec& s) { s.add_gpu_types("Z9000"); }, "spec.gpu_types"},
      {"duplicate gpu type by alias", [](JobSpec& s) { s.add_gpu_types("a100"); },
       "spec.gpu_types"},
      {"no work", [](JobSpec& s) { s.clear_work(); }, "spec.work"},
      {"zero gpu-hours", [](JobSpec& s) { s.set_reference_gpu_hours(0); },
       "spec.reference_gpu_hours"},
      {"negative gpu-hours", [](JobSpec& s) { s.set_reference_gpu_hours(-1); },
       "spec.reference_gpu_hours"},
      {"NaN gpu-hours",
       [](JobSpec& s) { s.set_reference_gpu_hours(std::numeric_limits<double>::quiet_NaN()); },
       "spec.reference_gpu_hours"},
      {"infinite gpu-hours",
       [](JobSpec& s) { s.set_reference_gpu_hours(std::numeric_limits<double>::infinity()); },
       "spec.reference_gpu_hours"},
      {"absurd gpu-hours", [](JobSpec& s) { s.set_reference_gpu_hours(1e7 + 1); },
       "spec.reference_gpu_hours"},
      {"duration under a minute", [](JobSpec& s) { SetDuration(s, 59, 999'999'999); },
       "spec.duration"},
      {"negative duration", [](JobSpec& s) { SetDuration(s, -3600); }, "spec.duration"},
      {"negative duration nanos", [](JobSpec& s) { SetDuration(s, 3600, -1); }, "spec.duration"},
      {"nanos out of range", [](JobSpec& s) { SetDuration(s, 3600, 1'000'000'000); },
       "spec.duration"},
      {"duration over a year", [](JobSpec& s) { SetDuration(s, 365LL * 86400 + 1); },
       "spec.duration"},
      {"negative cost cap", [](JobSpec& s) { s.set_max_cost_micros(-1); }, "spec.max_cost_micros"},
      {"absurd cost cap", [](JobSpec& s) { s.set_max_cost_micros(kMaxCapMicros + 1); },
       "spec.max_cost_micros"},
      {"negative carbon cap", [](JobSpec& s) { s.set_max_carbon_mg(-1); }, "spec.max_carbon_mg"},
      {"absurd carbon cap", [](JobSpec& s) { s.set_max_carbon_mg(kMaxCapMg + 1); },
       "spec.max_carbon_mg"},
      {"not_before nanos out of range",
       [](JobSpec& s) {
         *s.mutable_not_before() = ToProto(kNow);
         s.mutable_not_before()->set_nanos(-5);
       },
       "spec.not_before"},
      {"not_before beyond year 9999",
       [](JobSpec& s) { s.mutable_not_before()->set_seconds(253402300800); }, "spec.not_before"},
      {"not_before more than 366 days ahead",
       [](JobSpec& s) { *s.mutable_not_before() = ToProto(kNow + absl::Hours(24 * 367)); },
       "spec.not_before"},
      {"deadline in the past",
       [](JobSpec& s) { *s.mutable_deadline() = ToProto(kNow - absl::Hours(1)); }, "spec.deadline"},
      {"deadline now", [](JobSpec& s) { *s.mutable_deadline() = ToProto(kNow); }, "spec.deadline"},
      {"deadline before not_before",
       [](JobSpec& s) {
         *s.mutable_not_before() = ToProto(kNow + absl::Hours(10));
         *s.mutable_deadline() = ToProto(kNow + absl::Hours(5));
       },
       "spec.deadline"},
      {"deadline more than 366 days ahead",
       [](JobSpec& s) { *s.mutable_deadline() = ToProto(kNow + absl::Hours(24 * 367)); },
       "spec.deadline"},
      {"deadline not a timestamp",
       [](JobSpec& s) { s.mutable_deadline()->set_seconds(-62135596801); }, "spec.deadline"},
      {"priority above 1000", [](JobSpec& s) { s.set_priority(1001); }, "spec.priority"},
      {"priority below -1000", [](JobSpec& s) { s.set_priority(-1001); }, "spec.priority"},
      {"257 regions",
       [](JobSpec& s) {
         for (int i = 0; i < 256; ++i) s.add_regions("us-east-1");
       },
       "spec.regions"},
      {"empty region", [](JobSpec& s) { s.add_regions(""); }, "spec.regions"},
      {"region of 65 bytes", [](JobSpec& s) { s.add_regions(std::string(65, 'r')); },
       "spec.regions"},
      {"unknown region", [](JobSpec& s) { s.add_regions("mars-north-1"); }, "spec.regions"},
      {"65 labels",
       [](JobSpec& s) {
         for (int i = 0; i < 65; ++i) (*s.mutable_labels())[absl::StrCat("k", i)] = "v";
       },
       "spec.labels"},
      {"empty label key", [](JobSpec& s) { (*s.mutable_labels())[""] = "v"; }, "spec.labels"},
      {"label key of 64 bytes",
       [](JobSpec& s) { (*s.mutable_labels())[std::string(64, 'k')] = "v"; }, "spec.labels"},
      {"label value of 257 bytes",
       [](JobSpec& s) { (*s.mutable_labels())["k"] = std::string(257, 'v'); }, "spec.labels"},
      {"label value not UTF-8", [](JobSpec& s) { (*s.mutable_labels())["k"] = "\x80"; },
       "spec.labels"},
      {"request_id of 129 bytes", [](JobSpec& s) { s.set_request_id(std::string(129, 'r')); },
       "spec.request_id"},
      {"request_id not UTF-8", [](JobSpec& s) { s.set_request_id("retry-\xfe\xff"); },
       "spec.request_id"},
      {"payload over 64 KiB", [](JobSpec& s) { s.set_payload(std::string(64 * 1024 + 1, 'p')); },
       "spec.payload"},
      {"unknown placement mode", [](JobSpec& s) { s.set_mode(static_cast<v1::PlacementMode>(99)); },
       "spec.mode"},
      {"negative carbon price", [](JobSpec& s) { s.set_carbon_price_micros_per_tonne(-1); },
       "spec.carbon_price_micros_per_tonne"},
      {"absurd carbon price",
       [](JobSpec& s) { s.set_carbon_price_micros_per_tonne(1'000'000'000'001LL); },
       "spec.carbon_price_micros_per_tonne"},
      {"command without argv", [](JobSpec& s) { (*s.mutable_command()->mutable_env())["A"] = "1"; },
       "spec.command.argv"},
      {"command with an empty program", [](JobSpec& s) { s.mutable_command()->add_argv(""); },
       "spec.command.argv[0]"},
      {"command argument with NUL",
       [](JobSpec& s) {
         s.mutable_command()->add_argv("python3");
         s.mutable_command()->add_argv(std::string("a\0b", 3));
       },
       "spec.command.argv[1]"},
      {"command argument over 4096 bytes",
       [](JobSpec& s) {
         s.mutable_command()->add_argv("echo");
         s.mutable_command()->add_argv(std::string(4097, 'a'));
       },
       "spec.command.argv[1]"},
      {"command with 257 arguments",
       [](JobSpec& s) {
         for (int i = 0; i < 257; ++i) s.mutable_command()->add_argv("x");
       },
       "spec.command.argv"},
      {"env name starting with a digit",
       [](JobSpec& s) {
         s.mutable_command()->add_argv("true");
         (*s.mutable_command()->mutable_env())["1X"] = "v";
       },
       "spec.command.env[1X]"},
      {"env name with '='",
       [](JobSpec& s) {
         s.mutable_command()->add_argv("true");
         (*s.mutable_command()->mutable_env())["A=B"] = "v";
       },
       "spec.command.env[A=B]"},
      {"env sets GREENLIGHT_JOB_ID",
       [](JobSpec& s) {
         s.mutable_command()->add_argv("true");
         (*s.mutable_command()->mutable_env())["GREENLIGHT_JOB_ID"] = "other";
       },
       "spec.command.env[GREENLIGHT_JOB_ID]"},
      {"env sets CUDA_VISIBLE_DEVICES",
       [](JobSpec& s) {
         s.mutable_command()->add_argv("true");
         (*s.mutable_command()->mutable_env())["CUDA_VISIBLE_DEVICES"] = "0,1";
       },
       "spec.command.env[CUDA_VISIBLE_DEVICES]"},
      {"env value with NUL",
       [](JobSpec& s) {
         s.mutable_command()->add_argv("true");
         (*s.mutable_command()->mutable_env())["A"] = std::string("x\0y", 3);
       },
       "spec.command.env[A]"},
      {"command over 256 KiB in all",
       [](JobSpec& s) {
         for (int i = 0; i < 70; ++i) s.mutable_command()->add_argv(std::string(4000, 'a'));
       },
       "spec.command"},
      {"absolute working dir",
       [](JobSpec& s) {
         s.mutable_command()->add_argv("true");
         s.mutable_command()->set_working_dir("/etc");
       },
       "spec.command.working_dir"},
      {"working dir escaping with ..",
       [](JobSpec& s) {
         s.mutable_command()->add_argv("true");
         s.mutable_command()->set_working_dir("a/../../b");
       },
       "spec.command.working_dir"},
  };
  ASSERT_GE(cases.size(), 30u);
  for (const Case& c : cases) {
    JobSpec spec = ValidSpec();
    c.mutate(spec);
    absl::Status st = ValidateJobSpec(spec, Ctx());
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << st;
    // The message starts with the field, then says the rule.
    EXPECT_THAT(std::string(st.message()), StartsWith(c.field + ":")) << c.name;
    EXPECT_GT(st.message().size(), c.field.size() + 4) << c.name << ": no rule given";
  }
}

TEST(ValidateJobSpec, AcceptsGoodSpecsIncludingEveryLimit) {
  struct Case {
    std::string name;
    std::function<void(JobSpec&)> mutate;
  };
  for (const Case& c : std::vector<Case>{
           {"typical", [](JobSpec&) {}},
           {"minimal: team, gpus and work only",
            [](JobSpec& s) {
              JobSpec m;
              m.set_team("cv");
              m.set_gpus(1);
              SetDuration(m, 60);
              s = m;
            }},
           {"4096 gpus",
            [](JobSpec& s) {
              s.set_gpus(kMaxGpus);
              s.set_reference_gpu_hours(kMaxGpus / 60.0);
            }},
           {"aliases of two models", [](JobSpec& s) { s.add_gpu_types("h100"); }},
           {"two models",
            [](JobSpec& s) {
              s.clear_gpu_types();
              s.add_gpu_types("A100");
              s.add_gpu_types("H100");
            }},
           {"name of 256 bytes of multibyte UTF-8",
            [](JobSpec& s) {
              std::string n;
              while (n.size() + 4 <= 256) n += "\xf0\x9f\x8c\xb1";  // U+1F331 seedling
              while (n.size() < 256) n += "a";
              s.set_name(n);
            }},
           {"name with U+10FFFF and U+FFFD",
            [](JobSpec& s) { s.set_name("\xf4\x8f\xbf\xbf \xef\xbf\xbd"); }},
           {"1e7 gpu-hours", [](JobSpec& s) { s.set_reference_gpu_hours(kMaxReferenceGpuHours); }},
           {"one minute", [](JobSpec& s) { SetDuration(s, 60); }},
           {"one GPU-minute per GPU (8 GPUs)",
            [](JobSpec& s) { s.set_reference_gpu_hours(8.0 / 60); }},
           {"name with spaces, accents and emoji",
            [](JobSpec& s) { s.set_name("caf\xc3\xa9 run \xf0\x9f\x8c\xb1 #2"); }},
           {"365 days", [](JobSpec& s) { SetDuration(s, 365LL * 86400); }},
           {"no caps",
            [](JobSpec& s) {
              s.set_max_cost_micros(0);
              s.set_max_carbon_mg(0);
            }},
           {"largest caps",
            [](JobSpec& s) {
              s.set_max_cost_micros(kMaxCapMicros);
              s.set_max_carbon_mg(kMaxCapMg);
            }},
           {"not_before in the past (start at once)",
            [](JobSpec& s) { *s.mutable_not_before() = ToProto(kNow - absl::Hours(24)); }},
           {"window of a day",
            [](JobSpec& s) {
              *s.mutable_not_before() = ToProto(kNow + absl::Hours(1));
              *s.mutable_deadline() = ToProto(kNow + absl::Hours(25));
            }},
           {"deadline 366 days ahead",
            [](JobSpec& s) { *s.mutable_deadline() = ToProto(kNow + absl::Hours(24 * 366)); }},
           {"priorities at the limits", [](JobSpec& s) { s.set_priority(-1000); }},
           {"priority 1000", [](JobSpec& s) { s.set_priority(1000); }},
           {"256 regions",
            [](JobSpec& s) {
              s.clear_regions();
              for (int i = 0; i < 256; ++i) s.add_regions(i % 2 ? "us-east-1" : "eu-central-1");
            }},
           {"64 labels with long keys and values",
            [](JobSpec& s) {
              s.clear_labels();
              for (int i = 0; i < 64; ++i)
                (*s.mutable_labels())[absl::StrCat(std::string(60, 'k'), i)] =
                    std::string(256, 'v');
            }},
           {"empty label value", [](JobSpec& s) { (*s.mutable_labels())["flag"] = ""; }},
           {"request_id of 128 bytes", [](JobSpec& s) { s.set_request_id(std::string(128, 'r')); }},
           {"payload of 64 KiB with any bytes",
            [](JobSpec& s) { s.set_payload(std::string(64 * 1024, '\xff')); }},
           {"every placement mode", [](JobSpec& s) { s.set_mode(v1::PLACEMENT_MODE_GREENEST); }},
           {"carbon price $1e6 per tonne",
            [](JobSpec& s) { s.set_carbon_price_micros_per_tonne(1'000'000'000'000LL); }},
           {"command with env and working dir at the limits",
            [](JobSpec& s) {
              v1::Command* c = s.mutable_command();
              c->add_argv("python3");
              for (int i = 1; i < 50; ++i) c->add_argv(std::string(4096, 'a'));
              (*c->mutable_env())["_Lr2"] = "3e-4";
              (*c->mutable_env())["PATH"] = "/opt/venv/bin:/usr/bin";
              (*c->mutable_env())["EMPTY"] = "";
              c->set_working_dir("runs/./a/../b/");
            }},
       }) {
    JobSpec spec = ValidSpec();
    c.mutate(spec);
    EXPECT_TRUE(ValidateJobSpec(spec, Ctx()).ok())
        << c.name << ": " << ValidateJobSpec(spec, Ctx());
  }
}

// What validation accepts is stored as protobuf and parsed back at restart;
// proto3 refuses to parse strings that are not strict UTF-8, so validation
// must refuse them first (else the store holds a job that cannot load).
TEST(ValidateJobSpec, AcceptedStringsSurviveTheStoreRoundTrip) {
  for (const std::string& text :
       {std::string("plain"), std::string("caf\xc3\xa9"), std::string("\xf0\x9f\x8c\xb1"),
        std::string("\xc0\xaf"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
        std::string("\xfe\xff"), std::string("\xe0\x80\xaf")}) {
    for (int field = 0; field < 4; ++field) {
      JobSpec spec = ValidSpec();
      if (field == 0) spec.set_name(text);
      if (field == 1) spec.set_request_id(text);
      if (field == 2) (*spec.mutable_labels())["k"] = text;
      if (field == 3) (*spec.mutable_labels())[text] = "v";
      bool accepted = ValidateJobSpec(spec, Ctx()).ok();
      JobSpec parsed;
      bool parses = parsed.ParseFromString(spec.SerializeAsString());
      EXPECT_EQ(accepted, parses) << "field " << field << " text bytes " << text.size();
    }
  }
}

TEST(ValidateJobSpec, WithoutLookupsOnlyTheShapeIsChecked) {
  ValidationContext bare;
  bare.now = kNow;
  JobSpec s = ValidSpec();
  s.set_team("anyone");
  s.clear_gpu_types();
  s.add_gpu_types("Z9000");
  s.clear_regions();
  s.add_regions("mars-north-1");
  EXPECT_TRUE(ValidateJobSpec(s, bare).ok()) << ValidateJobSpec(s, bare);
}

v1::Team ValidTeam() {
  v1::Team t;
  t.set_name("ml");
  t.set_parent("acme");
  t.set_monthly_cost_budget_micros(100'000'000'000);
  t.set_monthly_carbon_budget_mg(10'000'000'000);
  t.set_gpu_quota(64);
  (*t.mutable_gpu_quota_by_type())["H100"] = 16;
  t.set_carbon_price_micros_per_tonne(150'000'000);
  t.set_alert_ratio(0.8);
  t.set_budget_policy(v1::BUDGET_POLICY_STOP);
  return t;
}

TEST(ValidateTeam, RejectsEachBadFieldWithItsName) {
  struct Case {
    std::string name;
    std::function<void(v1::Team&)> mutate;
    std::string field;
  };
  auto exists = [](const std::string& n) { return n == "acme" || n == "ml"; };
  for (const Case& c : std::vector<Case>{
           {"empty name", [](v1::Team& t) { t.clear_name(); }, "team.name"},
           {"bad name", [](v1::Team& t) { t.set_name("ML team"); }, "team.name"},
           {"own parent", [](v1::Team& t) { t.set_parent("ml"); }, "team.parent"},
           {"bad parent name", [](v1::Team& t) { t.set_parent("Acme!"); }, "team.parent"},
           {"unknown parent", [](v1::Team& t) { t.set_parent("globex"); }, "team.parent"},
           {"negative cost budget", [](v1::Team& t) { t.set_monthly_cost_budget_micros(-1); },
            "team.monthly_cost_budget_micros"},
           {"absurd cost budget",
            [](v1::Team& t) { t.set_monthly_cost_budget_micros(kMaxCapMicros + 1); },
            "team.monthly_cost_budget_micros"},
           {"negative carbon budget", [](v1::Team& t) { t.set_monthly_carbon_budget_mg(-1); },
            "team.monthly_carbon_budget_mg"},
           {"negative quota", [](v1::Team& t) { t.set_gpu_quota(-1); }, "team.gpu_quota"},
           {"absurd quota", [](v1::Team& t) { t.set_gpu_quota(1'000'001); }, "team.gpu_quota"},
           {"negative quota by type",
            [](v1::Team& t) { (*t.mutable_gpu_quota_by_type())["A100"] = -1; },
            "team.gpu_quota_by_type"},
           {"negative carbon price", [](v1::Team& t) { t.set_carbon_price_micros_per_tonne(-1); },
            "team.carbon_price_micros_per_tonne"},
           {"alert ratio above 1", [](v1::Team& t) { t.set_alert_ratio(1.01); },
            "team.alert_ratio"},
           {"unknown unknown_grid policy", [](v1::Team& t) { t.set_unknown_grid("optimistic"); },
            "team.unknown_grid"},
           {"negative alert ratio", [](v1::Team& t) { t.set_alert_ratio(-0.1); },
            "team.alert_ratio"},
           {"NaN alert ratio",
            [](v1::Team& t) { t.set_alert_ratio(std::numeric_limits<double>::quiet_NaN()); },
            "team.alert_ratio"},
           {"unknown policy", [](v1::Team& t) { t.set_budget_policy(v1::BudgetPolicy(7)); },
            "team.budget_policy"},
           // The deprecated text (legacy_text.h) is still read for one release.
           {"unknown policy text", [](v1::Team& t) { t.set_on_budget_exhausted("pause"); },
            "team.on_budget_exhausted"},
           {"text disagreeing with the policy",
            [](v1::Team& t) { t.set_on_budget_exhausted("finish"); }, "team.budget_policy"},
       }) {
    v1::Team team = ValidTeam();
    c.mutate(team);
    absl::Status st = ValidateTeam(team, exists);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << st;
    EXPECT_THAT(std::string(st.message()), StartsWith(c.field + ":")) << c.name;
  }
  EXPECT_TRUE(ValidateTeam(ValidTeam(), exists).ok());
  v1::Team top = ValidTeam();
  top.clear_parent();
  top.set_monthly_cost_budget_micros(0);
  top.set_alert_ratio(0);
  top.clear_budget_policy();
  EXPECT_TRUE(ValidateTeam(top, exists).ok()) << "zeros mean unlimited / defaults";
}

// A status's message must be exactly "field: rule", and carry no payloads
// (ToGrpc derives the BadRequest from the message).
void ExpectInvalid(const absl::Status& st, const std::string& message, const std::string& name) {
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << name << ": " << st;
  EXPECT_EQ(std::string(st.message()), message) << name;
  int payloads = 0;
  st.ForEachPayload([&](absl::string_view, const absl::Cord&) { ++payloads; });
  EXPECT_EQ(payloads, 0) << name;
}

v1::NodePool ValidPool(const std::string& id) {
  v1::NodePool p;
  p.set_id(id);
  p.set_provider("aws");
  p.set_region("eu-central-1");
  p.set_instance_type("p4d.24xlarge");
  p.set_gpu_type("A100");
  p.set_gpus_per_node(8);
  p.set_nodes(4);
  p.set_price_micros_per_node_hour(32'770'000);
  p.set_spot_price_micros_per_node_hour(0);
  p.set_pue(1.2);
  p.set_gpu_power_w(400);
  return p;
}

TEST(ValidatePools, RejectsEachBadFieldWithItsIndexAndRule) {
  struct Case {
    std::string name;
    std::function<void(v1::NodePool&)> mutate;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"no id", [](v1::NodePool& p) { p.clear_id(); },
            "pools[1].id: required, at most 256 bytes"},
           {"id of 257 bytes", [](v1::NodePool& p) { p.set_id(std::string(257, 'p')); },
            "pools[1].id: required, at most 256 bytes"},
           {"no region", [](v1::NodePool& p) { p.clear_region(); }, "pools[1].region: required"},
           {"no gpu type", [](v1::NodePool& p) { p.clear_gpu_type(); },
            "pools[1].gpu_type: required"},
           {"zero gpus per node", [](v1::NodePool& p) { p.set_gpus_per_node(0); },
            "pools[1].gpus_per_node: must be 1..64"},
           {"65 gpus per node", [](v1::NodePool& p) { p.set_gpus_per_node(65); },
            "pools[1].gpus_per_node: must be 1..64"},
           {"negative nodes", [](v1::NodePool& p) { p.set_nodes(-1); },
            "pools[1].nodes: must be 0..1,000,000"},
           {"too many nodes", [](v1::NodePool& p) { p.set_nodes(1'000'001); },
            "pools[1].nodes: must be 0..1,000,000"},
           {"free nodes", [](v1::NodePool& p) { p.set_price_micros_per_node_hour(0); },
            "pools[1].price_micros_per_node_hour: must be > 0"},
           {"negative spot price",
            [](v1::NodePool& p) { p.set_spot_price_micros_per_node_hour(-1); },
            "pools[1].spot_price_micros_per_node_hour: must be >= 0"},
           {"pue below 1", [](v1::NodePool& p) { p.set_pue(0.9); },
            "pools[1].pue: must be in [1, 3] (0 = default)"},
           {"pue above 3", [](v1::NodePool& p) { p.set_pue(3.1); },
            "pools[1].pue: must be in [1, 3] (0 = default)"},
           {"negative gpu power", [](v1::NodePool& p) { p.set_gpu_power_w(-1); },
            "pools[1].gpu_power_w: must be in [0, 5000]"},
           {"absurd gpu power", [](v1::NodePool& p) { p.set_gpu_power_w(5001); },
            "pools[1].gpu_power_w: must be in [0, 5000]"},
       }) {
    std::vector<v1::NodePool> pools = {ValidPool("a"), ValidPool("b")};
    c.mutate(pools[1]);
    ExpectInvalid(ValidatePools(pools), c.message, c.name);
  }
}

TEST(ValidatePools, AcceptsGoodPoolsDefaultsAndLimits) {
  EXPECT_TRUE(ValidatePools({}).ok());
  v1::NodePool defaults = ValidPool("defaults");
  defaults.set_pue(0);
  defaults.set_gpu_power_w(0);
  defaults.set_nodes(0);
  v1::NodePool limits = ValidPool(std::string(256, 'l'));
  limits.set_gpus_per_node(64);
  limits.set_nodes(1'000'000);
  limits.set_pue(3);
  limits.set_gpu_power_w(5000);
  absl::Status st = ValidatePools({ValidPool("a"), defaults, limits});
  EXPECT_TRUE(st.ok()) << st;
}

TEST(ValidateCarbonSeries, RejectsEachBadFieldWithItsRule) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    std::string name;
    std::string zone;
    absl::Duration step;
    std::vector<double> values;
    double annual_average;
    std::string message;
  };
  const absl::Duration h = absl::Hours(1);
  for (const Case& c : std::vector<Case>{
           {"no zone", "", h, {300}, 0, "zone: required, at most 64 bytes"},
           {"zone of 65 bytes",
            std::string(65, 'z'),
            h,
            {300},
            0,
            "zone: required, at most 64 bytes"},
           {"step under a minute",
            "DE",
            absl::Seconds(59),
            {300},
            0,
            "step: must be between 1 minute and 24 hours"},
           {"step over a day",
            "DE",
            absl::Hours(24) + absl::Seconds(1),
            {300},
            0,
            "step: must be between 1 minute and 24 hours"},
           {"no values", "DE", h, {}, 0, "points: between 1 and 100,000 points"},
           {"too many values", "DE", h, std::vector<double>(kMaxCarbonPoints + 1, 300), 0,
            "points: between 1 and 100,000 points"},
           {"negative value", "DE", h, {300, -1}, 0, "points[1].g_per_kwh: must be in [0, 5000]"},
           {"absurd value", "DE", h, {300, 5001}, 0, "points[1].g_per_kwh: must be in [0, 5000]"},
           {"NaN value", "DE", h, {nan}, 0, "points[0].g_per_kwh: must be in [0, 5000]"},
           {"infinite value",
            "DE",
            h,
            {300, 300, inf},
            0,
            "points[2].g_per_kwh: must be in [0, 5000]"},
           {"negative average",
            "DE",
            h,
            {300},
            -1,
            "annual_average_g_per_kwh: must be in [0, 5000]"},
           {"NaN average", "DE", h, {300}, nan, "annual_average_g_per_kwh: must be in [0, 5000]"},
           {"absurd average",
            "DE",
            h,
            {300},
            5001,
            "annual_average_g_per_kwh: must be in [0, 5000]"},
       }) {
    ExpectInvalid(ValidateCarbonSeries(c.zone, c.step, c.values, c.annual_average), c.message,
                  c.name);
  }
}

TEST(ValidateCarbonSeries, AcceptsGoodSeriesAtTheLimits) {
  EXPECT_TRUE(ValidateCarbonSeries("DE", absl::Hours(1), {300, 0, 5000}, 0).ok());
  EXPECT_TRUE(ValidateCarbonSeries(std::string(64, 'z'), absl::Minutes(1), {1}, 5000).ok());
  EXPECT_TRUE(
      ValidateCarbonSeries("DE", absl::Hours(24), std::vector<double>(kMaxCarbonPoints, 300), 380)
          .ok());
}

v1::SetCarbonSeriesRequest SeriesRequest(absl::Duration step, int points) {
  v1::SetCarbonSeriesRequest r;
  r.set_zone("DE");
  for (int i = 0; i < points; ++i) {
    auto* p = r.add_points();
    *p->mutable_time() = ToProto(kNow + step * i);
    p->set_g_per_kwh(300 + i);
  }
  return r;
}

TEST(ValidateSetCarbonSeriesRequest, NeedsPointsAscendingAtTheStep) {
  ExpectInvalid(ValidateSetCarbonSeriesRequest(SeriesRequest(absl::Hours(1), 0)),
                "points: at least one point", "no points");
  v1::SetCarbonSeriesRequest gap = SeriesRequest(absl::Hours(1), 3);
  *gap.mutable_points(2)->mutable_time() = ToProto(kNow + absl::Hours(3));
  ExpectInvalid(ValidateSetCarbonSeriesRequest(gap),
                "points[2].time: points must be ascending at the step (1h)", "gap");
  // 15-minute points without a step: the default step is an hour.
  v1::SetCarbonSeriesRequest quarter = SeriesRequest(absl::Minutes(15), 2);
  ExpectInvalid(ValidateSetCarbonSeriesRequest(quarter),
                "points[1].time: points must be ascending at the step (1h)", "default step");
  *quarter.mutable_step() = ToProtoDuration(absl::Minutes(15));
  EXPECT_EQ(CarbonSeriesStep(quarter), absl::Minutes(15));
  EXPECT_TRUE(ValidateSetCarbonSeriesRequest(quarter).ok());
  EXPECT_EQ(CarbonSeriesStep(SeriesRequest(absl::Hours(1), 1)), absl::Hours(1));
  EXPECT_TRUE(ValidateSetCarbonSeriesRequest(SeriesRequest(absl::Hours(1), 48)).ok());
}

TEST(ValidateSchedulerRequests, RejectEachBadFieldWithItsRule) {
  v1::EstimateJobRequest estimate;
  EXPECT_TRUE(ValidateEstimateJobRequest(estimate).ok());
  estimate.set_top_k(50);
  EXPECT_TRUE(ValidateEstimateJobRequest(estimate).ok());
  estimate.set_top_k(51);
  ExpectInvalid(ValidateEstimateJobRequest(estimate), "top_k: must be between 0 and 50",
                "top_k 51");
  estimate.set_top_k(-1);
  ExpectInvalid(ValidateEstimateJobRequest(estimate), "top_k: must be between 0 and 50",
                "top_k -1");

  v1::GetJobRequest get;
  ExpectInvalid(ValidateGetJobRequest(get), "job_id: required", "get without id");
  get.set_job_id("j-1");
  EXPECT_TRUE(ValidateGetJobRequest(get).ok());

  v1::ListJobsRequest list;
  EXPECT_TRUE(ValidateListJobsRequest(list).ok());
  list.set_page_size(-1);
  ExpectInvalid(ValidateListJobsRequest(list), "page_size: must be >= 0", "negative page size");
  list.set_page_size(100);
  list.add_states(v1::JobState_MAX);
  EXPECT_TRUE(ValidateListJobsRequest(list).ok());
  list.mutable_states()->Add(v1::JobState_MAX + 1);
  ExpectInvalid(ValidateListJobsRequest(list), "states: unknown state", "unknown state");

  v1::CancelJobRequest cancel;
  ExpectInvalid(ValidateCancelJobRequest(cancel), "job_id: required", "cancel without id");
  cancel.set_job_id("j-1");
  cancel.set_reason(std::string(1024, 'r'));
  EXPECT_TRUE(ValidateCancelJobRequest(cancel).ok());
  cancel.set_reason(std::string(1025, 'r'));
  ExpectInvalid(ValidateCancelJobRequest(cancel), "reason: at most 1024 bytes", "long reason");

  v1::WatchJobsRequest watch;
  EXPECT_TRUE(ValidateWatchJobsRequest(watch).ok());
  watch.set_from_revision(-1);
  ExpectInvalid(ValidateWatchJobsRequest(watch), "from_revision: must be >= 0", "negative rev");
}

TEST(ValidateGetUsageRequest, NeedsATeam) {
  v1::GetUsageRequest usage;
  ExpectInvalid(ValidateGetUsageRequest(usage), "team: required", "no team");
  usage.set_team("ml");
  EXPECT_TRUE(ValidateGetUsageRequest(usage).ok());
}

TEST(ValidateCreateTokenRequest, TeamTokensNameAnExistingTeamAdminTokensNone) {
  auto exists = [](const std::string& t) { return t == "ml"; };
  struct Case {
    std::string name;
    bool admin;
    std::string team;
    size_t description_bytes;
    std::string message;  // "" = OK
  };
  for (const Case& c : std::vector<Case>{
           {"team token", false, "ml", 256, ""},
           {"admin token", true, "", 0, ""},
           {"team token without team", false, "", 0, "team: required for a team token"},
           {"team token of unknown team", false, "cv", 0, "team: unknown team 'cv'"},
           {"admin token with team", true, "ml", 0, "team: must be empty for an admin token"},
           {"long description", true, "", 257, "description: at most 256 bytes"},
       }) {
    v1::CreateTokenRequest req;
    req.set_admin(c.admin);
    req.set_team(c.team);
    req.set_description(std::string(c.description_bytes, 'd'));
    absl::Status st = ValidateCreateTokenRequest(req, exists);
    if (c.message.empty()) {
      EXPECT_TRUE(st.ok()) << c.name << ": " << st;
    } else {
      ExpectInvalid(st, c.message, c.name);
    }
  }
}

}  // namespace
}  // namespace greenlight::scheduler
