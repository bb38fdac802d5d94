//! Writing a batch's changes back in a few multi-row statements, in an order that satisfies
//! the foreign keys.

use super::*;

impl UnitOfWork {
    /// Writes every change, in an order that satisfies the foreign keys. With `and_commit`
    /// (SQLite only), the script that carries them ends with `COMMIT`.
    pub async fn flush(
        &mut self,
        conn: &mut AnyConnection,
        and_commit: bool,
    ) -> Result<(), StoreError> {
        // A hold loaded and then changed is listed twice; sorted, writes also go in id order.
        self.touched_holds.sort_unstable();
        self.touched_holds.dedup();
        let now = self.now_ms;
        let asset = self.asset.clone();
        let mut writes = BatchWrites::new(self.dialect);
        let transfers: Vec<Vec<Value>> = self
            .transfers
            .iter()
            .map(|t| {
                vec![
                    Value::Text(&t.id),
                    Value::Text(&asset),
                    Value::Text(t.kind.as_str()),
                    Value::Text(&t.debit),
                    Value::Text(&t.credit),
                    Value::Int(t.amount),
                    Value::Int(t.debit_after),
                    Value::Int(t.credit_after),
                    Value::OptText(t.refund_of.as_deref()),
                    Value::OptText(t.hold_id.as_deref()),
                    Value::OptText(t.order_id.as_deref()),
                    Value::OptText(t.description.as_deref()),
                    Value::OptText(t.metadata.as_deref()),
                    Value::OptText(t.actor.as_deref()),
                    Value::Int(now),
                ]
            })
            .collect();
        writes
            .insert(conn, "transfers", TRANSFER_COLUMNS, &transfers)
            .await?;

        let accounts: Vec<&Account> = {
            let mut dirty: Vec<&Account> = self
                .touched_accounts
                .iter()
                .filter_map(|user| self.accounts.get(user))
                .collect();
            dirty.sort_by(|a, b| a.id.cmp(&b.id));
            dirty
        };
        let mut new_grants = Vec::new();
        let mut changed_grants = Vec::new();
        for account in &accounts {
            for g in account.grants.iter().filter(|g| g.dirty) {
                if g.is_new {
                    new_grants.push(vec![
                        Value::Text(&g.id),
                        Value::Text(&account.id),
                        Value::Text(&g.source),
                        Value::Int(g.priority),
                        Value::Int(g.amount),
                        Value::Int(g.remaining),
                        Value::OptInt(g.expires_at),
                        Value::Text(&g.transfer_id),
                        Value::Int(g.created_at),
                    ]);
                } else {
                    changed_grants.push(vec![Value::Text(&g.id), Value::Int(g.remaining)]);
                }
            }
        }
        writes
            .insert(conn, "grants", GRANT_COLUMNS, &new_grants)
            .await?;
        let columns = &[("id", Text), ("remaining", Int)];
        writes
            .update(conn, "grants", columns, &changed_grants)
            .await?;

        let links: Vec<Vec<Value>> = self
            .links
            .iter()
            .map(|(transfer, grant, amount)| {
                vec![
                    Value::Text(transfer),
                    Value::Text(grant),
                    Value::Int(*amount),
                ]
            })
            .collect();
        let columns = &[("transfer_id", Text), ("grant_id", Text), ("amount", Int)];
        writes
            .insert(conn, "transfer_grants", columns, &links)
            .await?;

        let mut new_holds = Vec::new();
        let mut changed_holds = Vec::new();
        for h in self
            .touched_holds
            .iter()
            .filter_map(|id| self.holds.get(id))
            .filter(|h| h.dirty)
        {
            if h.is_new {
                new_holds.push(vec![
                    Value::Text(&h.id),
                    Value::Text(&h.account_id),
                    Value::Text(&h.user_id),
                    Value::Text(&h.creator),
                    Value::Int(h.amount),
                    Value::Text(h.status.as_str()),
                    Value::OptText(h.description.as_deref()),
                    Value::Int(h.expires_at),
                    Value::Int(h.created_at),
                    Value::OptInt(h.settled_at),
                    Value::OptInt(h.captured),
                    Value::OptText(h.transfer_id.as_deref()),
                ]);
            } else {
                changed_holds.push(vec![
                    Value::Text(&h.id),
                    Value::Text(h.status.as_str()),
                    Value::OptInt(h.settled_at),
                    Value::OptInt(h.captured),
                    Value::OptText(h.transfer_id.as_deref()),
                ]);
            }
        }
        writes
            .insert(conn, "holds", HOLD_INSERT_COLUMNS, &new_holds)
            .await?;
        let columns = &[
            ("id", Text),
            ("status", Text),
            ("settled_at", Int),
            ("captured", Int),
            ("transfer_id", Text),
        ];
        writes
            .update(conn, "holds", columns, &changed_holds)
            .await?;

        let mut balances: Vec<Vec<Value>> = accounts
            .iter()
            .map(|a| {
                vec![
                    Value::Text(&a.id),
                    Value::Int(a.balance),
                    Value::Int(a.held),
                ]
            })
            .collect();
        let mut system: Vec<(&String, i64)> = self
            .system
            .iter()
            .filter(|(_, s)| s.changed)
            .map(|(which, s)| (&self.system_ids[which], s.balance))
            .collect();
        system.extend(
            self.merchants
                .values()
                .filter(|m| m.changed)
                .map(|m| (&m.id, m.balance)),
        );
        system.sort();
        balances.extend(
            system
                .into_iter()
                .map(|(id, balance)| vec![Value::Text(id), Value::Int(balance), Value::Int(0)]),
        );
        let columns = &[("id", Text), ("balance", Int), ("held", Int)];
        writes.update(conn, "accounts", columns, &balances).await?;

        let keys: Vec<Vec<Value>> = self
            .new_idempotency
            .iter()
            .map(|(scope, key, hash, status, body)| {
                vec![
                    Value::Text(scope),
                    Value::Text(key),
                    Value::Text(hash),
                    Value::Int(*status),
                    Value::Text(body),
                    Value::Int(now),
                ]
            })
            .collect();
        let columns = crate::idempotency::RECORD_COLUMNS;
        writes
            .insert(conn, "idempotency_keys", columns, &keys)
            .await?;

        let audits: Vec<Vec<Value>> = self
            .audits
            .iter()
            .map(|a| {
                vec![
                    Value::Text(&a.id),
                    Value::OptText(a.actor_id.as_deref()),
                    Value::Text(&a.actor_kind),
                    Value::Text(&a.action),
                    Value::OptText(a.target.as_deref()),
                    Value::Text(&a.details),
                    Value::OptText(a.ip.as_deref()),
                    Value::Int(now),
                ]
            })
            .collect();
        let columns = &[
            ("id", Text),
            ("actor_id", Text),
            ("actor_kind", Text),
            ("action", Text),
            ("target", Text),
            ("details", Text),
            ("ip", Text),
            ("created_at", Int),
        ];
        writes.insert(conn, "audit_log", columns, &audits).await?;

        self.coupon_redemptions.sort();
        for coupon in &self.coupon_redemptions {
            crate::coupons::redeem(conn, coupon).await?;
        }
        if and_commit {
            writes.commit_at_end();
        }
        writes.finish(conn).await
    }
}

const TRANSFER_COLUMNS: &[Column] = &[
    ("id", Text),
    ("asset", Text),
    ("kind", Text),
    ("debit_account_id", Text),
    ("credit_account_id", Text),
    ("amount", Int),
    ("debit_balance_after", Int),
    ("credit_balance_after", Int),
    ("refund_of", Text),
    ("hold_id", Text),
    ("order_id", Text),
    ("description", Text),
    ("metadata", Text),
    ("actor", Text),
    ("created_at", Int),
];

const GRANT_COLUMNS: &[Column] = &[
    ("id", Text),
    ("account_id", Text),
    ("source", Text),
    ("priority", Int),
    ("amount", Int),
    ("remaining", Int),
    ("expires_at", Int),
    ("transfer_id", Text),
    ("created_at", Int),
];

const HOLD_INSERT_COLUMNS: &[Column] = &[
    ("id", Text),
    ("account_id", Text),
    ("user_id", Text),
    ("creator", Text),
    ("amount", Int),
    ("status", Text),
    ("description", Text),
    ("expires_at", Int),
    ("created_at", Int),
    ("settled_at", Int),
    ("captured", Int),
    ("transfer_id", Text),
];
