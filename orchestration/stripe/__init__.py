"""Payment providers: the interface invoicing talks to, a Stripe implementation, a manual one."""
