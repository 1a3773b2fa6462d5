"""Invoices: freezing fees into invoice records and the stateful steps applied to them."""
