//! The wire form of the store's read models (balances, history, API keys, the audit log, the
//! ledger's verification). The store answers plain structs and knows nothing of HTTP or of
//! OpenAPI; these types are what the API sends and documents, so the document cannot drift
//! from the bytes. Schema names stay the store's (`BalanceView`, …): clients generated from
//! the document keep their type names.

use bursar_store::{api_keys, audit, ledger, verify};
use serde::Serialize;
use utoipa::ToSchema;

/// One page of a list, newest first; `next_cursor` is null on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A store page in its wire form.
    pub fn from_store<U>(page: bursar_store::page::Page<U>, view: impl FnMut(U) -> T) -> Self {
        Self {
            data: page.data.into_iter().map(view).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// Which grant paid how much of a debit.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = PaidBy)]
pub struct PaidByView {
    pub grant_id: String,
    pub source: String,
    pub amount: i64,
}

impl From<&ledger::PaidBy> for PaidByView {
    fn from(p: &ledger::PaidBy) -> Self {
        Self {
            grant_id: p.grant_id.clone(),
            source: p.source.clone(),
            amount: p.amount,
        }
    }
}

/// A receipt's or a transaction's list of grants that paid, in its wire form.
pub fn paid_by(paid: &[ledger::PaidBy]) -> Vec<PaidByView> {
    paid.iter().map(PaidByView::from).collect()
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GrantView)]
pub struct GrantLot {
    pub id: String,
    pub source: String,
    pub amount: i64,
    pub remaining: i64,
    pub priority: i64,
    pub expires_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BalanceView)]
pub struct Balance {
    pub user_id: String,
    pub asset: String,
    pub balance: i64,
    /// Balance less the credits reserved by active holds.
    pub available: i64,
    pub held: i64,
    pub overdraft_limit: i64,
    pub grants: Vec<GrantLot>,
}

impl From<ledger::read::BalanceView> for Balance {
    fn from(b: ledger::read::BalanceView) -> Self {
        Self {
            user_id: b.user_id,
            asset: b.asset,
            balance: b.balance,
            available: b.available,
            held: b.held,
            overdraft_limit: b.overdraft_limit,
            grants: b
                .grants
                .into_iter()
                .map(|g| GrantLot {
                    id: g.id,
                    source: g.source,
                    amount: g.amount,
                    remaining: g.remaining,
                    priority: g.priority,
                    expires_at: g.expires_at,
                    created_at: g.created_at,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TransactionView)]
pub struct Transaction {
    pub id: String,
    pub kind: String,
    /// Signed from the user's point of view: negative when credits left the account.
    pub amount: i64,
    pub balance_after: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// For debits: which grants paid, and so whether purchased, bonus or allowance credits
    /// were used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paid_by: Vec<PaidByView>,
    pub created_at: String,
}

impl From<ledger::read::TransactionView> for Transaction {
    fn from(t: ledger::read::TransactionView) -> Self {
        Self {
            paid_by: paid_by(&t.paid_by),
            id: t.id,
            kind: t.kind,
            amount: t.amount,
            balance_after: t.balance_after,
            order_id: t.order_id,
            hold_id: t.hold_id,
            refund_of: t.refund_of,
            description: t.description,
            metadata: t.metadata,
            created_at: t.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiKeyView)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_by: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<api_keys::ApiKeyView> for ApiKey {
    fn from(k: api_keys::ApiKeyView) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_by: k.created_by,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A key just created: the only response that ever holds its secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NewApiKey)]
pub struct NewApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub secret: String,
}

impl From<api_keys::NewApiKey> for NewApiKey {
    fn from(k: api_keys::NewApiKey) -> Self {
        Self {
            key: k.key.into(),
            secret: k.secret,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditEntryView {
    pub id: String,
    pub actor_id: Option<String>,
    /// `user`, `api_key`, `cli` or `system`.
    pub actor_kind: String,
    pub action: String,
    pub target: Option<String>,
    pub details: serde_json::Value,
    pub ip: Option<String>,
    pub created_at: String,
}

impl From<audit::AuditEntry> for AuditEntryView {
    fn from(e: audit::AuditEntry) -> Self {
        Self {
            id: e.id,
            actor_id: e.actor_id,
            actor_kind: e.actor_kind,
            action: e.action,
            target: e.target,
            details: e.details,
            ip: e.ip,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AssetSummary)]
pub struct AssetSummaryView {
    pub asset: String,
    /// 0 on a sound ledger.
    pub sum_of_balances: i128,
    pub accounts: i64,
    pub transfers: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = VerifyReport)]
pub struct VerifyReportView {
    pub ok: bool,
    pub assets: Vec<AssetSummaryView>,
    pub problems: Vec<String>,
}

impl From<verify::VerifyReport> for VerifyReportView {
    fn from(r: verify::VerifyReport) -> Self {
        Self {
            ok: r.ok,
            assets: r
                .assets
                .into_iter()
                .map(|a| AssetSummaryView {
                    asset: a.asset,
                    sum_of_balances: a.sum_of_balances,
                    accounts: a.accounts,
                    transfers: a.transfers,
                })
                .collect(),
            problems: r.problems,
        }
    }
}
