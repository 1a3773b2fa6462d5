{{ config(materialized='view') }}
-- Current usage of the pay-in-advance charges of some customers' subscriptions: fct_current_usage's
-- rows and parameters, for the charges it leaves out. A pay-in-advance charge bills each event
-- as it arrives, so its usage so far is what the open period has billed: the period's
-- pay-in-advance fees, priced by the rating's own macro, summed per charge x filter x group.
-- The units are the running peak the fees were priced on (decreases are not refunded), as Lago
-- shows them, and the fees add up to the price of that peak, Lago's amount: each is the rise
-- of the price from the previous peak to the new one (volume, whose price can fall, is not
-- allowed in advance). Every charge and filter of the plan gets a row, zero rows included.
-- A separate view: the billing API reads it only for plans with such charges, beside
-- fct_current_usage, since each inlined pricing costs a request about a second of analysis. As
-- fct_current_usage, it has a copy for the catalog of the last rating run,
-- fct_current_pay_in_advance_usage_in_use, which the billing API reads first.
{{ current_pay_in_advance_usage() }}
