//! Stripe: Checkout Sessions, refunds and `Stripe-Signature` webhooks over Stripe's HTTP API.
