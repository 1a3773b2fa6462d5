"""The analytics marts against figures computed by hand on the revenue scenario (scenario.py).

MRR at month ends (rating day Apr 15 for April):
  Jan: alice 100 (basic), bob 100 (basic)                                  = 200
  Feb: alice 300 (pro since Feb 15), bob 0 (churned Feb 10),
       carol 300 + 50 usage (100 calls x 0.50, February period)            = 650
  Mar: alice 300, bob 100 (back on Mar 5), carol 300 + 20 (March usage)    = 720
  Apr: unchanged                                                           = 720
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.analytics.conftest import AnalyticsDatabase


def rows(analytics: AnalyticsDatabase, sql: str, **parameters: Any) -> list[dict[str, Any]]:
    result = analytics.client().query(
        sql, parameters={"org": analytics.scenario.organization_id, **parameters}
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def test_mrr_movements_match_hand_computed_figures(analytics: AnalyticsDatabase) -> None:
    found = {
        (str(r["month"])[:7], r["external_customer_id"]): (
            r["movement"], r["opening_mrr"], r["closing_mrr"],
            r["new_mrr"] + r["reactivation_mrr"] + r["expansion_mrr"]
            - r["contraction_mrr"] - r["churned_mrr"],
        )
        for r in rows(
            analytics, "select * from fct_mrr_movements where organization_id = {org:UUID}"
        )
    }  # fmt: skip
    expected = {
        ("2024-01", "alice"): ("new", 0, 100, 100),
        ("2024-01", "bob"): ("new", 0, 100, 100),
        ("2024-02", "alice"): ("expansion", 100, 300, 200),
        ("2024-02", "bob"): ("churn", 100, 0, -100),
        ("2024-02", "carol"): ("new", 0, 350, 350),
        ("2024-03", "alice"): ("unchanged", 300, 300, 0),
        ("2024-03", "bob"): ("reactivation", 0, 100, 100),
        ("2024-03", "carol"): ("contraction", 350, 320, -30),
        ("2024-04", "alice"): ("unchanged", 300, 300, 0),
        ("2024-04", "bob"): ("unchanged", 100, 100, 0),
        ("2024-04", "carol"): ("unchanged", 320, 320, 0),
    }
    assert found == {
        k: (m, Decimal(o), Decimal(c), Decimal(n)) for k, (m, o, c, n) in expected.items()
    }


def test_company_metrics_per_month(analytics: AnalyticsDatabase) -> None:
    found = {
        str(r["month"])[:7]: r
        for r in rows(
            analytics, "select * from fct_saas_metrics_monthly where organization_id = {org:UUID}"
        )
    }
    assert [found[m]["mrr_cents"] for m in sorted(found)] == [20_000, 65_000, 72_000, 72_000]
    assert found["2024-04"]["arr_cents"] == 864_000
    february = found["2024-02"]
    assert (february["opening_customers"], february["churned_customers"]) == (2, 1)
    assert february["logo_churn_rate"] == Decimal("0.5")
    assert february["revenue_churn_rate"] == Decimal("0.5")  # bob's 100 of 200
    assert february["net_revenue_retention"] == Decimal("1.5")  # (200 + 200 - 100) / 200
    assert february["gross_revenue_retention"] == Decimal("0.5")  # (200 - 100) / 200
    assert found["2024-03"]["net_revenue_retention"] == Decimal("0.953846153846")  # 620 / 650
    assert found["2024-03"]["arpu"] == Decimal(240)  # 720 / 3 paying customers
    assert found["2024-01"]["net_revenue_retention"] is None


def test_daily_mrr_follows_the_upgrade_day(analytics: AnalyticsDatabase) -> None:
    by_day = {
        str(r["date"]): r["mrr"]
        for r in rows(
            analytics,
            "select date, sum(mrr) as mrr from fct_mrr_daily where organization_id = {org:UUID}"
            " and customer_id = {alice:UUID} group by date",
            alice=analytics.scenario.customers["alice"],
        )
    }
    assert by_day["2024-02-14"] == Decimal(100)
    assert by_day["2024-02-15"] == Decimal(300)
    assert max(by_day) == "2024-04-15"


def test_retention_cohorts(analytics: AnalyticsDatabase) -> None:
    cohorts = {
        (str(r["cohort_month"])[:7], str(r["month"])[:7]): r
        for r in rows(
            analytics, "select * from fct_retention_cohorts where organization_id = {org:UUID}"
        )
    }
    january_in_march = cohorts[("2024-01", "2024-03")]
    # alice and bob started at 100 each; in March alice pays 300 and bob 100 again.
    assert january_in_march["starting_mrr"] == Decimal(200)
    assert january_in_march["net_revenue_retention"] == Decimal(2)
    assert january_in_march["gross_revenue_retention"] == Decimal(1)
    assert cohorts[("2024-01", "2024-02")]["retained_customers"] == 1


def test_receivables_and_late_payment(analytics: AnalyticsDatabase) -> None:
    invoices = {
        r["invoice_id"]: r
        for r in rows(analytics, "select * from fct_invoices where organization_id = {org:UUID}")
    }
    ids = analytics.scenario.invoices
    assert invoices[ids["bob_feb"]]["paid_late"] == 1
    assert invoices[ids["alice_feb"]]["paid_late"] == 0
    assert invoices[ids["alice_feb"]]["refunded_amount_cents"] == 2_000
    assert (
        invoices[ids["carol_mar"]]["aging_bucket"],
        invoices[ids["carol_mar"]]["days_overdue"],
    ) == ("31-60", 31)
    assert (
        invoices[ids["alice_mar"]]["aging_bucket"],
        invoices[ids["alice_mar"]]["days_overdue"],
    ) == ("1-30", 15)
    assert invoices[ids["carol_apr"]]["aging_bucket"] == "not_due"
    assert invoices[ids["bob_draft"]]["outstanding_amount_cents"] == 0
    outstanding = sum(r["outstanding_amount_cents"] for r in invoices.values())
    assert outstanding == 35_000 + 30_000 + 32_000


def test_lago_aggregates(analytics: AnalyticsDatabase) -> None:
    gross = {
        str(r["month"])[:7]: (r["amount_cents"], r["invoices_count"])
        for r in rows(
            analytics,
            "select month, sum(amount_cents) as amount_cents, sum(invoices_count) as invoices_count"
            " from fct_gross_revenue_monthly where organization_id = {org:UUID} group by month",
        )
    }
    assert gross == {"2024-02": (18_000, 2), "2024-03": (65_000, 2), "2024-04": (32_000, 1)}
    usage = rows(
        analytics,
        "select month, billable_metric_code, sum(amount_cents) as cents"
        " from fct_invoiced_usage_monthly where organization_id = {org:UUID}"
        " group by month, billable_metric_code order by month",
    )
    assert [(str(r["month"])[:7], r["billable_metric_code"], r["cents"]) for r in usage] == [
        ("2024-03", "api_calls", 5_000),
        ("2024-04", "api_calls", 2_000),
    ]
    overdue = rows(
        analytics,
        "select month, sum(amount_cents) as cents, groupArrayArray(invoice_ids) as ids"
        " from fct_overdue_balances_monthly where organization_id = {org:UUID} group by month",
    )
    assert len(overdue) == 1 and str(overdue[0]["month"])[:7] == "2024-03"
    assert overdue[0]["cents"] == 65_000
    assert set(overdue[0]["ids"]) == {
        analytics.scenario.invoices["carol_mar"],
        analytics.scenario.invoices["alice_mar"],
    }


def test_revenue_by_plan_keeps_rated_and_invoiced_apart(analytics: AnalyticsDatabase) -> None:
    by_plan = {
        (str(r["month"])[:7], r["plan_code"]): (r["rated_amount_cents"], r["invoiced_amount_cents"])
        for r in rows(
            analytics,
            "select month, plan_code, sum(rated_amount_cents) as rated_amount_cents,"
            " sum(invoiced_amount_cents) as invoiced_amount_cents from fct_revenue_monthly"
            " where organization_id = {org:UUID} group by month, plan_code",
        )
    }
    # March invoices: carol 300 + 50 usage and alice 300 on pro. Rated fees billed in March are
    # the February periods (arrears): alice pro 155.17, carol 300 + 50.
    assert by_plan[("2024-03", "pro")] == (15_517 + 30_000 + 5_000, 65_000)
    # February: January periods of alice and bob, alice's basic days up to the upgrade
    # (48.28) and bob's up to his termination (34.48); invoiced: the two February invoices.
    assert by_plan[("2024-02", "basic")] == (10_000 + 10_000 + 4_828 + 3_448, 20_000)
