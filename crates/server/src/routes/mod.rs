//! Routes grouped by area. Every handler carries its OpenAPI description, so the served
//! document cannot drift from the routes.

pub mod admin;
pub mod admin_jobs;
pub mod admin_orders;
pub mod auth;
pub mod auto_topup;
pub mod catalog;
pub mod coupons;
pub mod credits;
pub mod daily_gift;
pub mod marketplace;
pub mod me;
pub mod notifications;
pub mod ops;
pub mod orders;
pub mod pay;
pub mod rewards;
pub mod sign_in;
pub mod subscriptions;
pub mod webhook_endpoints;
pub mod webhooks;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(sign_in::methods))
        .routes(routes!(sign_in::oidc))
        .routes(routes!(sign_in::facebook))
        .routes(routes!(sign_in::request_code))
        .routes(routes!(sign_in::verify_code))
        .routes(routes!(sign_in::my_identities))
        .routes(routes!(sign_in::unlink_identity))
        .routes(routes!(sign_in::user_identities))
        .routes(routes!(me::get_me, me::patch_me))
        .routes(routes!(me::balance))
        .routes(routes!(me::transactions))
        .routes(routes!(notifications::mine))
        .routes(routes!(notifications::all))
        .routes(routes!(auto_topup::get_rule, auto_topup::put_rule))
        .routes(routes!(auto_topup::preview))
        .routes(routes!(auto_topup::list_methods, auto_topup::add_method))
        .routes(routes!(auto_topup::delete_method))
        .routes(routes!(
            webhook_endpoints::list_endpoints,
            webhook_endpoints::create_endpoint
        ))
        .routes(routes!(
            webhook_endpoints::update_endpoint,
            webhook_endpoints::delete_endpoint
        ))
        .routes(routes!(webhook_endpoints::list_deliveries))
        .routes(routes!(webhook_endpoints::retry_delivery))
        .routes(routes!(
            daily_gift::claim_daily_gift,
            daily_gift::daily_gift_status
        ))
        .routes(routes!(rewards::inbox))
        .routes(routes!(rewards::claim_reward))
        .routes(routes!(rewards::send_reward))
        .routes(routes!(subscriptions::list))
        .routes(routes!(subscriptions::update))
        .routes(routes!(subscriptions::renew))
        .routes(routes!(credits::spend))
        .routes(routes!(credits::refund))
        .routes(routes!(credits::create_hold))
        .routes(routes!(credits::capture_hold))
        .routes(routes!(credits::void_hold))
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::get_user, admin::patch_user))
        .routes(routes!(admin::adjust))
        .routes(routes!(admin::list_api_keys, admin::create_api_key))
        .routes(routes!(admin::delete_api_key))
        .routes(routes!(admin::audit_log))
        .routes(routes!(admin::user_transactions))
        .routes(routes!(admin::verify_ledger))
        .routes(routes!(admin_jobs::list_jobs))
        .routes(routes!(admin_jobs::retry_job))
        .routes(routes!(orders::create_order, orders::list_orders))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(orders::receipt))
        .routes(routes!(webhooks::receive))
        .routes(routes!(pay::sandbox_page, pay::sandbox_pay))
        .routes(routes!(pay::result_page))
        .routes(routes!(admin_orders::list_orders))
        .routes(routes!(admin_orders::get_order))
        .routes(routes!(admin_orders::refund_order))
        .routes(routes!(admin_orders::confirm_order))
        .routes(routes!(admin_orders::import_statement))
        .routes(routes!(coupons::list_coupons, coupons::create_coupon))
        .routes(routes!(
            coupons::get_coupon,
            coupons::update_coupon,
            coupons::delete_coupon
        ))
        .routes(routes!(
            marketplace::list_own_products,
            marketplace::create_product
        ))
        .routes(routes!(
            marketplace::update_product,
            marketplace::delist_product
        ))
        .routes(routes!(marketplace::list_merchant_redemptions))
        .routes(routes!(marketplace::fulfil_redemption))
        .routes(routes!(marketplace::merchant_balance))
        .routes(routes!(marketplace::products_on_offer))
        .routes(routes!(marketplace::redeem))
        .routes(routes!(marketplace::my_redemptions))
        .routes(routes!(marketplace::cancel_redemption))
        .routes(routes!(catalog::list_packages))
        .routes(routes!(
            catalog::admin_list_packages,
            catalog::create_package
        ))
        .routes(routes!(
            catalog::get_package,
            catalog::update_package,
            catalog::delete_package
        ))
}
