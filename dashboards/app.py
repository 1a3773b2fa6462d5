"""Meterhouse revenue dashboards: `meterhouse dashboards serve` runs this Streamlit app.

The entry script only assembles the navigation; each page draws the shared sidebar filters
(dashboards.filters.sidebar_filters) itself, so its widgets belong to the page that uses them.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

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
navigation.run()
