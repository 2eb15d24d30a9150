// Commands that change the settings: teams, pools, carbon series, tokens;
// and the explicit tick.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "services/scheduler/core.h"
#include "services/scheduler/legacy_text.h"
#include "services/scheduler/proto_conversion.h"
#include "services/scheduler/validation.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

namespace {

std::string BudgetChangeText(const v1::Team* old, const v1::Team& team) {
  if (old == nullptr)
    return absl::StrCat(
        "created: cost budget ", Money::FromMicros(team.monthly_cost_budget_micros()).ToString(),
        ", carbon budget ", Carbon::FromMg(team.monthly_carbon_budget_mg()).ToString(),
        ", gpu quota ", team.gpu_quota());
  return absl::StrCat(
      "cost budget ", Money::FromMicros(old->monthly_cost_budget_micros()).ToString(), " -> ",
      Money::FromMicros(team.monthly_cost_budget_micros()).ToString(), ", carbon budget ",
      Carbon::FromMg(old->monthly_carbon_budget_mg()).ToString(), " -> ",
      Carbon::FromMg(team.monthly_carbon_budget_mg()).ToString(), ", gpu quota ", old->gpu_quota(),
      " -> ", team.gpu_quota());
}

}  // namespace

absl::StatusOr<v1::Team> SchedulerCore::SetTeam(const v1::Team& team_in) {
  return queue_.Call<v1::Team>([this, team_in](Txn& txn) -> absl::StatusOr<v1::Team> {
    RETURN_IF_ERROR(ValidateTeam(
        team_in, [this](const std::string& n) { return ledger_.FindTeam(n) != nullptr; }));
    v1::Team team = team_in;
    if (team.alert_ratio() == 0) team.set_alert_ratio(kDefaultAlertRatio);
    NormalizeBudgetPolicy(team, *BudgetPolicyOf(team_in));  // validated above
    if (team.unknown_grid().empty()) team.set_unknown_grid("pessimistic");
    // Two levels: a parent may not itself have a parent, nor a team with children become a child.
    if (!team.parent().empty()) {
      const v1::Team* p = ledger_.FindTeam(team.parent());
      if (p && !p->parent().empty())
        return absl::InvalidArgumentError(absl::StrCat(
            "team.parent: '", team.parent(), "' already has a parent; two levels at most"));
      for (const auto& t : ledger_.Teams())
        if (t.parent() == team.name())
          return absl::InvalidArgumentError(absl::StrCat(
              "team.parent: '", team.name(), "' has child teams and cannot have a parent"));
    }
    absl::Time now = options_.clock->Now();
    std::string change = BudgetChangeText(ledger_.FindTeam(team.name()), team);
    ledger_.SetTeam(team);
    txn.batch.teams.push_back(team);
    txn.batch.ledger.push_back(ledger_.BudgetChange(team.name(), now, change));
    writer_.capacity_changed = true;     // a raised quota may let waiting jobs start
    over_limits_.Note(ledger_, nodes_);  // a lowered budget or quota is not an overshoot
    return team;
  });
}

absl::StatusOr<int> SchedulerCore::UpsertPools(const std::vector<v1::NodePool>& pools) {
  RETURN_IF_ERROR(ValidatePools(pools));
  return queue_.Call<int>([this, pools](Txn& txn) -> absl::StatusOr<int> {
    std::vector<providers::Pool> converted;
    for (const auto& p : pools) {
      converted.push_back(PoolFromProto(p, options_.inventory.gpus));
      if (p.executor() == v1::POOL_EXECUTOR_AGENT) {
        const v1::NodePool* known = agents_.FindPool(p.id());
        converted.back().nodes = known ? known->nodes() : 0;
      }
      RETURN_IF_ERROR(nodes_.CanUpsert(converted.back()));  // all or nothing
    }
    int n = 0;
    for (size_t i = 0; i < converted.size(); ++i) {
      providers::Pool& pool = converted[i];
      if (pools[i].executor() == v1::POOL_EXECUTOR_AGENT) {
        // Its nodes are the registered agents (kept across upserts).
        agents_.PutPool(pools[i]);
        const v1::NodePool& stored = *agents_.FindPool(pool.id);
        pool.nodes = stored.nodes();
        RETURN_IF_ERROR(nodes_.Upsert(pool));
        SyncAgentNodes(pool.id);
        txn.batch.pools.push_back(stored);
        ++n;
        continue;
      }
      RETURN_IF_ERROR(nodes_.Upsert(pool));
      // Upsert keeps nodes in use: store the pool as it now is.
      pool = nodes_.pools()[nodes_.PoolIndex(pool.id)].pool;
      txn.batch.pools.push_back(PoolToProto(pool, 0));
      ++n;
    }
    writer_.capacity_changed = true;
    return n;
  });
}

absl::StatusOr<v1::GridZone> SchedulerCore::SetCarbonSeries(const std::string& zone,
                                                            absl::Time start, absl::Duration step,
                                                            std::vector<double> values,
                                                            double annual_average,
                                                            const CarbonSeriesMeta& meta) {
  RETURN_IF_ERROR(ValidateCarbonSeries(zone, step, values, annual_average));
  return queue_.Call<v1::GridZone>([this, zone, start, step, values = std::move(values),
                                    annual_average,
                                    meta](Txn& txn) mutable -> absl::StatusOr<v1::GridZone> {
    double avg = annual_average;
    providers::CarbonSeriesPtr old = zones_.Find(zone);
    if (avg == 0) avg = old ? old->annual_average() : 0;
    if (avg == 0) {
      double s = 0;
      for (double v : values) s += v;
      avg = s / values.size();
    }
    auto series = std::make_shared<providers::CarbonSeries>(zone, start, step, values, avg);
    series->set_source(meta.source);
    series->set_stale(meta.stale);
    absl::Time now = options_.clock->Now();
    absl::Time updated = meta.updated == absl::InfinitePast() ? now : meta.updated;
    zones_.Put(zone, series, updated);
    if (meta.persist) {
      store::ZoneRow row;
      row.name = zone;
      row.start_us = absl::ToUnixMicros(start);
      row.step_s = absl::ToInt64Seconds(step);
      row.values = std::move(values);
      row.annual_average = avg;
      row.source = series->source();
      row.updated_us = absl::ToUnixMicros(updated);
      txn.batch.zones.push_back(std::move(row));
    }
    v1::GridZone out = ZoneToProto(zone, *series, now);
    // The answer states the figure set, also for a zone without a known grid.
    out.clear_unknown_grid();
    out.clear_pessimistic_g_per_kwh();
    out.clear_pessimistic_basis();
    out.set_annual_average_g_per_kwh(avg);
    return out;
  });
}

absl::Status SchedulerCore::PutToken(const store::TokenRow& token) {
  return queue_.Run([this, token](Txn& txn) -> absl::Status {
    tokens_[token.info.id()] = token;
    txn.batch.tokens.push_back(token);
    return absl::OkStatus();
  });
}

absl::Status SchedulerCore::Tick() {
  return queue_.Run([this](Txn& txn) -> absl::Status {
    DoTick(txn, options_.clock->Now());
    return absl::OkStatus();
  });
}

}  // namespace greenlight::scheduler
