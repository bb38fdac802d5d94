//! The limits the server enforces on each field, written into the document from the same
//! constants and vocabularies the checks use, so a client generated from the document (or a
//! fuzzer) knows what is accepted, and the two cannot disagree.

use bursar_core::{
    AutoTopupStatus, CodeChannel, DeliveryStatus, EventType, GrantSource, HoldStatus,
    IdentityProvider, JobState, Language, MAX_CREDITS, NotificationChannel, NotificationKind,
    NotificationStatus, OrderKind, OrderStatus, PackageKind, PaymentStatus, RedemptionStatus, Role,
    SubscriptionStatus, TransferKind, UserStatus,
};
use serde_json::{Value, json};

use crate::app::{accounts, api_keys, checkout, payment_methods, rewards};
use crate::auth::password::{PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
use crate::routes::{
    admin, admin_orders, catalog, coupons, credits, marketplace, sign_in, webhook_endpoints,
};
use crate::views::IDEMPOTENCY_KEY_CHARS_MAX;

fn credits() -> Value {
    json!({"minimum": 1, "maximum": MAX_CREDITS})
}

fn at_least_zero() -> Value {
    json!({"minimum": 0, "maximum": MAX_CREDITS})
}

fn text(min: usize, max: usize) -> Value {
    // At least one character that is not white space (names are trimmed before the check),
    // and no NUL anywhere (see `NO_NUL`).
    if min > 0 {
        json!({"minLength": min, "maxLength": max,
               "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"})
    } else {
        json!({"maxLength": max})
    }
}

fn one_of(names: impl IntoIterator<Item = &'static str>) -> Value {
    json!({"enum": names.into_iter().collect::<Vec<_>>()})
}

/// RFC 3339 instants; the server also takes a plain `YYYY-MM-DD` date.
fn instant() -> Value {
    json!({"format": "date-time"})
}

fn webhook_url() -> Value {
    json!({"maxLength": webhook_endpoints::URL_CHARS_MAX, "pattern": "^https?://[^\\s/?#]+[^\\s]*$"})
}

fn event_types() -> Value {
    json!({"minItems": 1, "items": {"type": "string",
        "enum": EventType::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>()}})
}

/// `(schema, property, limits)` for request bodies.
fn body_rules(providers: &[&str]) -> Vec<(&'static str, &'static str, Value)> {
    let providers: Vec<&str> = providers.to_vec();
    vec![
        ("SpendRequest", "amount", credits()),
        (
            "SpendRequest",
            "description",
            text(0, credits::DESCRIPTION_CHARS_MAX),
        ),
        ("HoldRequest", "amount", credits()),
        (
            "HoldRequest",
            "expires_in_seconds",
            json!({"minimum": 1, "maximum": credits::HOLD_SECONDS_MAX}),
        ),
        (
            "HoldRequest",
            "description",
            text(0, credits::DESCRIPTION_CHARS_MAX),
        ),
        ("CaptureRequest", "amount", credits()),
        ("RefundRequest", "amount", credits()),
        (
            "RegisterRequest",
            "email",
            json!({"format": "email", "maxLength": accounts::EMAIL_CHARS_MAX}),
        ),
        (
            "RegisterRequest",
            "password",
            json!({"minLength": PASSWORD_MIN_CHARS, "maxLength": PASSWORD_MAX_CHARS}),
        ),
        (
            "RegisterRequest",
            "display_name",
            text(0, accounts::DISPLAY_NAME_CHARS_MAX),
        ),
        (
            "RegisterRequest",
            "role",
            one_of([Role::Member.as_str(), Role::Merchant.as_str()]),
        ),
        (
            "ProfileChanges",
            "display_name",
            text(0, accounts::DISPLAY_NAME_CHARS_MAX),
        ),
        (
            "ProfileChanges",
            "password",
            json!({"minLength": PASSWORD_MIN_CHARS, "maxLength": PASSWORD_MAX_CHARS}),
        ),
        (
            "AdminUserChanges",
            "role",
            one_of(Role::ALL.iter().map(|r| r.as_str())),
        ),
        (
            "AdminUserChanges",
            "status",
            one_of(UserStatus::ALL.iter().map(|s| s.as_str())),
        ),
        (
            "AdminUserChanges",
            "level",
            json!({"minimum": 0, "maximum": 1_000_000_000, "multipleOf": 0.01}),
        ),
        ("AdminUserChanges", "overdraft_limit", at_least_zero()),
        (
            "AdjustmentRequest",
            "amount",
            json!({"minimum": -MAX_CREDITS, "maximum": MAX_CREDITS, "not": {"const": 0}}),
        ),
        (
            "AdjustmentRequest",
            "reason",
            text(1, admin::REASON_CHARS_MAX),
        ),
        (
            "ApiKeyRequest",
            "name",
            text(1, api_keys::KEY_NAME_CHARS_MAX),
        ),
        ("OrderRequest", "provider", json!({"enum": providers})),
        ("RenewRequest", "provider", json!({"enum": providers})),
        (
            "RenewRequest",
            "coupon_code",
            json!({"maxLength": coupons::CODE_CHARS_MAX}),
        ),
        (
            "OrderRequest",
            "quantity",
            json!({"minimum": 1, "maximum": checkout::QUANTITY_MAX}),
        ),
        (
            "OrderRequest",
            "coupon_code",
            json!({"maxLength": coupons::CODE_CHARS_MAX}),
        ),
        ("OrderRefundRequest", "amount", credits()),
        (
            "OrderRefundRequest",
            "reason",
            text(0, admin_orders::REASON_CHARS_MAX),
        ),
        (
            "ConfirmRequest",
            "reference",
            text(0, admin_orders::REASON_CHARS_MAX),
        ),
        ("PackageRequest", "name", text(1, catalog::NAME_CHARS_MAX)),
        (
            "PackageRequest",
            "kind",
            one_of(PackageKind::ALL.iter().map(|k| k.as_str())),
        ),
        ("PackageRequest", "credits", at_least_zero()),
        ("PackageRequest", "bonus_credits", at_least_zero()),
        ("PackageRequest", "daily_credits", at_least_zero()),
        (
            "PackageRequest",
            "duration_days",
            json!({"minimum": 1, "maximum": 36_500}),
        ),
        (
            "PackageRequest",
            "first_purchase_bonus_percent",
            json!({"minimum": 0, "maximum": 100}),
        ),
        (
            "PackageRequest",
            "min_level",
            json!({"minimum": 0, "maximum": 1_000_000_000, "multipleOf": 0.01}),
        ),
        (
            "PackageRequest",
            "min_balance",
            json!({"minimum": -MAX_CREDITS, "maximum": MAX_CREDITS}),
        ),
        (
            "PackageRequest",
            "sort_order",
            json!({"minimum": -MAX_CREDITS, "maximum": MAX_CREDITS}),
        ),
        ("MoneyBody", "amount", at_least_zero()),
        ("MoneyBody", "currency", json!({"pattern": "^[A-Z]{3}$"})),
        (
            "CouponRequest",
            "code",
            json!({"minLength": 1, "maxLength": coupons::CODE_CHARS_MAX, "pattern": "^[A-Za-z0-9_-]+$"}),
        ),
        (
            "CouponRequest",
            "percent_off",
            json!({"minimum": 1, "maximum": 100}),
        ),
        ("CouponRequest", "amount_off", credits()),
        (
            "CouponRequest",
            "currency",
            json!({"pattern": "^[A-Z]{3}$"}),
        ),
        ("CouponRequest", "valid_from", instant()),
        ("CouponRequest", "valid_until", instant()),
        ("CouponRequest", "max_redemptions", credits()),
        ("CouponRequest", "max_per_user", credits()),
        (
            "CouponRequest",
            "package_ids",
            json!({"maxItems": coupons::PACKAGES_MAX}),
        ),
        (
            "AutoTopupRequest",
            "threshold",
            json!({"minimum": -MAX_CREDITS, "maximum": MAX_CREDITS}),
        ),
        ("AutoTopupRequest", "target", credits()),
        ("OidcRequest", "id_token", text(1, sign_in::TOKEN_CHARS_MAX)),
        ("OidcRequest", "nonce", text(0, sign_in::NONCE_CHARS_MAX)),
        (
            "CodeRequest",
            "channel",
            one_of(CodeChannel::ALL.iter().map(|c| c.as_str())),
        ),
        (
            "CodeVerification",
            "channel",
            one_of(CodeChannel::ALL.iter().map(|c| c.as_str())),
        ),
        ("CodeVerification", "code", json!({"pattern": "^[0-9]{6}$"})),
        (
            "FacebookRequest",
            "access_token",
            text(1, sign_in::TOKEN_CHARS_MAX),
        ),
        (
            "ProductRequest",
            "name",
            text(1, marketplace::NAME_CHARS_MAX),
        ),
        (
            "ProductRequest",
            "description",
            text(0, marketplace::DESCRIPTION_CHARS_MAX),
        ),
        ("ProductRequest", "points_price", credits()),
        ("ProductRequest", "stock", at_least_zero()),
        ("ProductRequest", "limit_per_member", credits()),
        (
            "RedemptionRequest",
            "quantity",
            json!({"minimum": 1, "maximum": bursar_store::marketplace::QUANTITY_MAX}),
        ),
        (
            "AutoTopupRequest",
            "max_topups_per_day",
            json!({"minimum": 1, "maximum": 1000}),
        ),
        (
            "PaymentMethodRequest",
            "provider",
            one_of(["sandbox", "stripe"]),
        ),
        ("EndpointRequest", "url", webhook_url()),
        ("EndpointRequest", "events", event_types()),
        (
            "EndpointRequest",
            "description",
            text(0, webhook_endpoints::DESCRIPTION_CHARS_MAX),
        ),
        ("EndpointChanges", "url", webhook_url()),
        ("EndpointChanges", "events", event_types()),
        (
            "EndpointChanges",
            "description",
            text(0, webhook_endpoints::DESCRIPTION_CHARS_MAX),
        ),
        (
            "ProfileChanges",
            "language",
            one_of(Language::ALL.iter().map(|l| l.as_str())),
        ),
        (
            "ProfileChanges",
            "phone",
            json!({"pattern": "^(\\+[1-9][0-9]{6,14})?$"}),
        ),
        (
            "ProfileChanges",
            "time_zone",
            // Every IANA zone the server knows, or "" for the server's own.
            one_of(std::iter::once("").chain(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()))),
        ),
        (
            "PaymentMethodRequest",
            "card_number",
            json!({"maxLength": 64}),
        ),
        (
            "PaymentMethodRequest",
            "setup_intent_id",
            json!({"maxLength": payment_methods::SETUP_REF_CHARS_MAX}),
        ),
        ("RewardRequest", "title", text(1, rewards::TITLE_CHARS_MAX)),
        ("RewardRequest", "credits", credits()),
        (
            "RewardRequest",
            "user_ids",
            json!({"minItems": 1, "maxItems": rewards::USER_IDS_MAX}),
        ),
        ("RewardRequest", "expires_at", instant()),
    ]
}

/// `(schema, property, vocabulary)` for responses: every closed vocabulary a client may
/// branch on is an `enum` in the document, from the same type the server writes it with.
fn response_rules() -> Vec<(&'static str, &'static str, Value)> {
    fn all<T: Copy + 'static>(items: &'static [T], name: fn(T) -> &'static str) -> Value {
        one_of(items.iter().map(|item| name(*item)))
    }
    let order_status = || all(OrderStatus::ALL, OrderStatus::as_str);
    let hold_status = || all(HoldStatus::ALL, HoldStatus::as_str);
    vec![
        ("OrderView", "status", order_status()),
        ("OrderView", "kind", all(OrderKind::ALL, OrderKind::as_str)),
        (
            "OrderView",
            "payment_status",
            all(PaymentStatus::ALL, PaymentStatus::as_str),
        ),
        ("ReceiptView", "status", order_status()),
        ("OrderRefundReceipt", "order_status", order_status()),
        ("HoldReceipt", "status", hold_status()),
        ("CaptureReceipt", "status", hold_status()),
        ("VoidReceipt", "status", hold_status()),
        ("JobView", "state", all(JobState::ALL, JobState::as_str)),
        ("UserView", "role", all(Role::ALL, Role::as_str)),
        (
            "UserView",
            "status",
            all(UserStatus::ALL, UserStatus::as_str),
        ),
        ("UserView", "language", all(Language::ALL, Language::as_str)),
        (
            "IdentityView",
            "provider",
            all(IdentityProvider::ALL, IdentityProvider::as_str),
        ),
        (
            "Redemption",
            "status",
            all(RedemptionStatus::ALL, RedemptionStatus::as_str),
        ),
        (
            "SubscriptionView",
            "status",
            all(SubscriptionStatus::ALL, SubscriptionStatus::as_str),
        ),
        (
            "DeliveryView",
            "status",
            all(DeliveryStatus::ALL, DeliveryStatus::as_str),
        ),
        (
            "PackageView",
            "kind",
            all(PackageKind::ALL, PackageKind::as_str),
        ),
        (
            "GrantView",
            "source",
            all(GrantSource::ALL, GrantSource::as_str),
        ),
        (
            "PaidBy",
            "source",
            all(GrantSource::ALL, GrantSource::as_str),
        ),
        (
            "TransactionView",
            "kind",
            all(TransferKind::ALL, TransferKind::as_str),
        ),
        (
            "AutoTopupView",
            "status",
            all(AutoTopupStatus::ALL, AutoTopupStatus::as_str),
        ),
        (
            "NotificationView",
            "kind",
            all(NotificationKind::ALL, NotificationKind::as_str),
        ),
        (
            "NotificationView",
            "channel",
            all(NotificationChannel::ALL, NotificationChannel::as_str),
        ),
        (
            "NotificationView",
            "status",
            all(NotificationStatus::ALL, NotificationStatus::as_str),
        ),
    ]
}

/// `(path, parameter, location, limits)` for a parameter of one path, applied after the
/// general rules (a `status` that is not an order's status).
fn path_parameter_rules() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    vec![
        (
            "/api/v1/admin/notifications",
            "status",
            "query",
            one_of(NotificationStatus::ALL.iter().map(|s| s.as_str())),
        ),
        (
            "/api/v1/admin/notifications",
            "kind",
            "query",
            one_of(NotificationKind::ALL.iter().map(|s| s.as_str())),
        ),
    ]
}

/// `(parameter, location, limits)` for parameters, wherever they appear.
fn parameter_rules() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "limit",
            "query",
            json!({"minimum": 1, "maximum": bursar_store::page::MAX_LIMIT}),
        ),
        (
            "status",
            "query",
            one_of(OrderStatus::ALL.iter().map(|s| s.as_str())),
        ),
        (
            "provider",
            "query",
            one_of(crate::payments::KNOWN_PROVIDERS.iter().copied()),
        ),
        ("from", "query", instant()),
        ("to", "query", instant()),
        ("format", "query", one_of(["json", "html"])),
        (
            "Idempotency-Key",
            "header",
            // Visible ASCII, no white space at either end (a header value is trimmed).
            json!({"minLength": 1, "maxLength": IDEMPOTENCY_KEY_CHARS_MAX,
                   "pattern": "^[!-~]([ -~]*[!-~])?$"}),
        ),
    ]
}

/// No text the server takes may hold NUL (PostgreSQL text cannot): every string parameter and
/// every string field of a request body that has no tighter rule says so.
const NO_NUL: &str = "^[^\\u0000]*$";

pub(super) fn apply(doc: &mut Value, providers: &[&str]) {
    apply_limits(doc, providers);
    forbid_nul(doc);
}

fn apply_limits(doc: &mut Value, providers: &[&str]) {
    if let Some(schemas) = doc.pointer_mut("/components/schemas") {
        for (schema, property, limits) in body_rules(providers).into_iter().chain(response_rules())
        {
            if let Some(target) = schemas.pointer_mut(&format!("/{schema}/properties/{property}")) {
                merge(target, &limits);
            }
        }
    }
    let rules = parameter_rules();
    let path_rules = path_parameter_rules();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for parameter in parameters {
                let (name, location) = (parameter["name"].clone(), parameter["in"].clone());
                let general = rules.iter().map(|(n, l, limits)| (None, n, l, limits));
                let own = path_rules
                    .iter()
                    .map(|(p, n, l, limits)| (Some(p), n, l, limits));
                for (rule_path, rule_name, rule_location, limits) in general.chain(own) {
                    let applies = rule_path.is_none_or(|p| p == path);
                    if applies && name == *rule_name && location == *rule_location {
                        merge(&mut parameter["schema"], limits);
                    }
                }
            }
        }
    }
}

/// Adds `limits` to a property's schema; an `enum` of a nullable property also admits null.
fn merge(target: &mut Value, limits: &Value) {
    let nullable = target["type"]
        .as_array()
        .is_some_and(|types| types.iter().any(|t| t == "null"));
    let (Some(target), Some(limits)) = (target.as_object_mut(), limits.as_object()) else {
        return;
    };
    for (keyword, value) in limits {
        let mut value = value.clone();
        if keyword == "enum"
            && nullable
            && let Some(values) = value.as_array_mut()
        {
            values.push(Value::Null);
        }
        target.insert(keyword.clone(), value);
    }
}

fn forbid_nul(doc: &mut Value) {
    let mut request_schemas = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for operation in paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(|i| i.values())
        {
            if let Some(body) = operation.get("requestBody") {
                collect_refs(body, &mut request_schemas);
            }
        }
    }
    // Schemas a request body names, and the ones they name in turn.
    let mut seen = 0;
    while seen < request_schemas.len() {
        let name = request_schemas[seen].clone();
        if let Some(schema) = doc.pointer(&format!("/components/schemas/{name}")) {
            let mut nested = Vec::new();
            collect_refs(schema, &mut nested);
            for name in nested {
                if !request_schemas.contains(&name) {
                    request_schemas.push(name);
                }
            }
        }
        seen += 1;
    }
    for name in &request_schemas {
        if let Some(properties) = doc
            .pointer_mut(&format!("/components/schemas/{name}/properties"))
            .and_then(Value::as_object_mut)
        {
            for property in properties.values_mut() {
                no_nul_in_text(property);
                if let Some(items) = property.get_mut("items") {
                    no_nul_in_text(items);
                }
            }
        }
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            if let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            {
                for parameter in parameters {
                    no_nul_in_text(&mut parameter["schema"]);
                }
            }
            if let Some(form) = operation
                .pointer_mut("/requestBody/content/application~1x-www-form-urlencoded/schema")
            {
                no_nul_in_text(form);
            }
        }
    }
}

fn collect_refs(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_string());
            }
            map.values().for_each(|v| collect_refs(v, names));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, names)),
        _ => {}
    }
}

/// Adds the no-NUL pattern to a string schema that has no pattern, enum or format of its own.
fn no_nul_in_text(schema: &mut Value) {
    let is_text = match &schema["type"] {
        Value::String(t) => t == "string",
        Value::Array(types) => types.iter().any(|t| t == "string"),
        _ => false,
    };
    let Some(schema) = schema.as_object_mut() else {
        return;
    };
    if is_text
        && !["pattern", "enum", "format"]
            .iter()
            .any(|k| schema.contains_key(*k))
    {
        schema.insert("pattern".into(), NO_NUL.into());
    }
}
