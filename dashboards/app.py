"""Meterhouse revenue dashboards: `meterhouse dashboards serve` runs this Streamlit app.

The entry script draws the shared sidebar filters, then runs the page picked in the navigation.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards.filters import sidebar_filters

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="Meterhouse revenue", layout="wide")
navigation = st.navigation(
    [
        st.Page(PAGES / "overview.py", title="Overview", default=True),
        st.Page(PAGES / "revenue.py", title="Revenue"),
        st.Page(PAGES / "receivables.py", title="Receivables"),
        st.Page(PAGES / "usage.py", title="Usage"),
        st.Page(PAGES / "customer_360.py", title="Customer 360"),
        st.Page(PAGES / "invoices.py", title="Invoices"),
    ]
)
st.session_state["filters"] = sidebar_filters()
navigation.run()
