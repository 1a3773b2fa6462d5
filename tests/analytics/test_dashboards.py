"""Every dashboards page under Streamlit's AppTest, over the marts of the revenue scenario:
it renders without exception, shows the hand-computed figures, and its filters change them."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboards.data import MARTS_NOT_BUILT, WAREHOUSE_UNREACHABLE
from dashboards.filters import CONVERTED, Filters
from tests.analytics.conftest import AnalyticsDatabase
from tests.conftest import Warehouse
from tests.support.processes import REPO_ROOT, free_port

APP = str(REPO_ROOT / "dashboards" / "app.py")
# The Usage page's choice of a property no metric declares (a page script, not importable).
UNDECLARED = "Another property (read live from the events)"
# Each page by its script name, the default (Overview) as None.
EVERY_PAGE = [None, "revenue", "receivables", "usage", "customer_360", "invoices"]


@pytest.fixture
def app(analytics: AnalyticsDatabase, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    for name, value in analytics.env.items():
        monkeypatch.setenv(name, value)
    return AppTest.from_file(APP, default_timeout=60)


def open_page(app: AppTest, page: str | None = None) -> AppTest:
    app.run()
    if page:
        app.switch_page(f"pages/{page}.py").run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def metric(app: AppTest, label: str) -> str:
    values = {m.label: m.value for m in app.metric}
    assert label in values, values
    return str(values[label])


def test_overview_kpis_and_filters(app: AppTest) -> None:
    open_page(app)
    assert metric(app, "MRR") == "720.00 USD"
    assert metric(app, "ARR") == "8,640.00 USD"
    assert metric(app, "Revenue Apr 2024") == "320.00 USD"
    assert metric(app, "Outstanding") == "970.00 USD"
    assert metric(app, "Net revenue retention") == "100.0 %"
    app.multiselect(key="plans").set_value(["basic"]).run()
    assert metric(app, "MRR") == "100.00 USD"  # bob, back on basic
    app.multiselect(key="plans").set_value([]).run()
    app.date_input(key="date_range").set_value((date(2024, 1, 1), date(2024, 2, 29))).run()
    assert not app.exception
    assert metric(app, "MRR") == "650.00 USD"
    assert metric(app, "Net revenue retention") == "150.0 %"


def test_revenue_page(app: AppTest) -> None:
    open_page(app, "revenue")
    assert metric(app, "Invoiced revenue") == "1,170.00 USD"  # 100+100+350+300+320
    app.multiselect(key="plans").set_value(["basic"]).run()
    assert metric(app, "Invoiced revenue") == "200.00 USD"


def test_receivables_page(app: AppTest) -> None:
    open_page(app, "receivables")
    assert metric(app, "Outstanding") == "970.00 USD"
    assert metric(app, "Overdue") == "650.00 USD"
    app.date_input(key="date_range").set_value((date(2024, 1, 1), date(2024, 3, 31))).run()
    assert metric(app, "Outstanding") == "650.00 USD"


def test_usage_page(app: AppTest) -> None:
    open_page(app, "usage")
    assert metric(app, "Events") == "140"
    app.date_input(key="date_range").set_value((date(2024, 2, 1), date(2024, 2, 29))).run()
    assert metric(app, "Events") == "100"
    # The metric declares region (eu, us): offered, read from the property rollup.
    assert app.selectbox(key="usage_property_key").options == ["region", UNDECLARED]
    app.selectbox(key="usage_property_key").set_value("region").run()
    assert metric(app, "Events") == "100"  # every February event has a region
    assert app.selectbox(key="usage_property_value").options == ["eu", "us"]
    app.selectbox(key="usage_property_value").set_value("eu").run()
    assert not app.exception
    assert metric(app, "Events") == "60"
    # client is declared by no metric: read live from the events, and said so.
    app.selectbox(key="usage_property_key").set_value(UNDECLARED).run()
    app.text_input(key="usage_other_property").set_value("client").run()
    assert not app.exception
    assert metric(app, "Events") == "100"  # every February event has a client
    assert any("read live from the events table" in c.value for c in app.caption)
    app.text_input(key="usage_other_value").set_value("cli").run()
    assert metric(app, "Events") == "25"  # n = 0, 4, ..., 96


def test_customer_360_page(app: AppTest) -> None:
    open_page(app, "customer_360")
    customers = app.selectbox(key="customer")
    carol = next(o for o in customers.options if o == "carol")
    customers.select(carol).run()
    assert metric(app, "MRR") == "320.00 USD"
    alice = next(o for o in app.selectbox(key="customer").options if o == "alice")
    app.selectbox(key="customer").select(alice).run()
    assert not app.exception
    assert metric(app, "MRR") == "300.00 USD"


def test_invoices_page(app: AppTest) -> None:
    open_page(app, "invoices")
    assert metric(app, "Invoices") == "5"  # the draft is not finalized
    app.text_input(key="invoice_search").set_value("carol").run()
    assert metric(app, "Invoices") == "2"
    app.text_input(key="invoice_search").set_value("").run()
    app.multiselect(key="invoice_status").set_value(["draft"]).run()
    assert metric(app, "Invoices") == "1"


def test_conversion_uses_the_fx_table_and_never_adds_raw_currencies() -> None:
    rates = {"USD": Decimal(1), "EUR": Decimal("1.08")}
    frame = pd.DataFrame(
        {"month": ["2024-01", "2024-01"], "currency": ["USD", "EUR"], "amount": [10_000, 5_000]}
    )
    january = (date(2024, 1, 1), date(2024, 1, 31))
    converted = Filters(uuid.uuid4(), *january, CONVERTED, (), rates)
    assert converted.money(frame, ["month"], ["amount"], cents=True)["amount"].tolist() == [
        Decimal("154.00")  # 100 USD + 50 EUR x 1.08
    ]
    single = Filters(converted.organization_id, converted.start, converted.end, "EUR", (), rates)
    _, parameters = single.where()
    assert parameters["currency"] == "EUR"
    assert single.format(Decimal("50")) == "50.00 EUR"


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_before_the_marts_are_built_every_page_says_so(
    warehouse: Warehouse, unbuilt_database: str, page: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**warehouse.env, "MH_WAREHOUSE_DATABASE": unbuilt_database}.items():
        monkeypatch.setenv(name, value)
    app = open_page(AppTest.from_file(APP, default_timeout=60), page)  # no exception
    assert [info.value for info in app.info] == [MARTS_NOT_BUILT]


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_warehouse_down_every_page_says_so(
    warehouse: Warehouse, page: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for name, value in {**warehouse.env, "WAREHOUSE_URL": dead}.items():
        monkeypatch.setenv(name, value)
    app = open_page(AppTest.from_file(APP, default_timeout=60), page)  # no exception
    assert [error.value for error in app.error] == [WAREHOUSE_UNREACHABLE]
