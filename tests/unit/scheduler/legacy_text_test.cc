// The deprecated text twins of the enums: written together with the enum,
// read back into it from rows an older release stored (legacy_text.h).
#include "services/scheduler/legacy_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error_details.h"

// These tests read and write the deprecated fields on purpose.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace greenlight::scheduler {
namespace {

namespace v1 = greenlight::v1;

TEST(LegacyText, WritersSetTheEnumAndItsText) {
  v1::Job job;
  SetPending(job, v1::PENDING_REASON_QUOTA);
  EXPECT_EQ(job.pending(), v1::PENDING_REASON_QUOTA);
  EXPECT_EQ(job.pending_reason(), "QUOTA");
  SetPending(job, v1::PENDING_REASON_UNSPECIFIED);
  EXPECT_EQ(job.pending_reason(), "");

  v1::JobEvent e;
  SetEventType(e, v1::JOB_EVENT_TYPE_BUDGET_ALERT);
  EXPECT_EQ(e.event_type(), v1::JOB_EVENT_TYPE_BUDGET_ALERT);
  EXPECT_EQ(e.type(), "BUDGET_ALERT");
}

TEST(LegacyText, RowsOfAnOlderReleaseGetTheirEnum) {
  v1::Job job;
  job.set_pending_reason("CAPACITY");
  UpgradeLegacy(job);
  EXPECT_EQ(job.pending(), v1::PENDING_REASON_CAPACITY);

  for (const auto& [text, want] : std::vector<std::pair<std::string, v1::JobEventType>>{
           {"SUBMITTED", v1::JOB_EVENT_TYPE_SUBMITTED},
           {"STATE", v1::JOB_EVENT_TYPE_STATE},
           {"BUDGET_ALERT", v1::JOB_EVENT_TYPE_BUDGET_ALERT},
           {"ACCRUED", v1::JOB_EVENT_TYPE_ACCRUED}}) {
    v1::JobEvent e;
    e.set_type(text);
    UpgradeLegacy(e);
    EXPECT_EQ(e.event_type(), want) << text;
  }
  v1::JobEvent newer;  // a row that has its enum keeps it
  newer.set_event_type(v1::JOB_EVENT_TYPE_STATE);
  newer.set_type("SUBMITTED");
  UpgradeLegacy(newer);
  EXPECT_EQ(newer.event_type(), v1::JOB_EVENT_TYPE_STATE);
}

TEST(LegacyText, BudgetPolicyFromEitherField) {
  v1::Team t;
  EXPECT_EQ(*BudgetPolicyOf(t), v1::BUDGET_POLICY_FINISH) << "unset is finish";
  t.set_on_budget_exhausted("stop");
  EXPECT_EQ(*BudgetPolicyOf(t), v1::BUDGET_POLICY_STOP) << "the old text is still read";
  t.set_budget_policy(v1::BUDGET_POLICY_STOP);
  EXPECT_EQ(*BudgetPolicyOf(t), v1::BUDGET_POLICY_STOP) << "both agree";
  t.set_budget_policy(v1::BUDGET_POLICY_FINISH);
  auto bad = BudgetPolicyOf(t);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(FieldViolations(bad.status()).at(0).first, "team.budget_policy");
  t.set_on_budget_exhausted("later");
  EXPECT_EQ(FieldViolations(BudgetPolicyOf(t).status()).at(0).first, "team.on_budget_exhausted");

  v1::Team n;
  NormalizeBudgetPolicy(n, v1::BUDGET_POLICY_UNSPECIFIED);
  EXPECT_EQ(n.budget_policy(), v1::BUDGET_POLICY_FINISH);
  EXPECT_EQ(n.on_budget_exhausted(), "finish");
  NormalizeBudgetPolicy(n, v1::BUDGET_POLICY_STOP);
  EXPECT_EQ(n.on_budget_exhausted(), "stop");
}

}  // namespace
}  // namespace greenlight::scheduler
