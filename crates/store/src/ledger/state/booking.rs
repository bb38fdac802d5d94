//! The booking rules, applied to the loaded unit of work: posting transfers, debiting in
//! burn order, granting, holding, and settling what is overdue.

use bursar_core::MAX_CREDITS;

use super::*;

impl UnitOfWork {
    /// Releases this user's overdue holds and moves what is left of overdue grants to the
    /// `expired` account. Credits reserved by active holds stay, so a hold taken before the
    /// expiry can still be captured; the rest of such a grant expires once the hold settles.
    pub fn settle_overdue(&mut self, user_id: &str) {
        let now = self.now_ms;
        let Some(account_id) = self.accounts.get(user_id).map(|a| a.id.clone()) else {
            return;
        };
        let mut released = 0;
        for hold_id in self.holds_by_account.get(&account_id).into_iter().flatten() {
            let Some(hold) = self.holds.get_mut(hold_id) else {
                continue;
            };
            if hold.status == HoldStatus::Held && hold.expires_at <= now {
                hold.status = HoldStatus::Expired;
                hold.settled_at = Some(now);
                if !hold.dirty {
                    hold.dirty = true;
                    self.touched_holds.push(hold_id.clone());
                }
                released += hold.amount;
            }
        }
        if released > 0
            && let Some(account) = self.account_mut(user_id)
        {
            account.held -= released;
        }
        let Some(account) = self.accounts.get(user_id) else {
            return;
        };
        let lots: Vec<GrantLot> = account.grants.iter().map(Grant::lot).collect();
        for (grant_id, take) in plan_expiry(&lots, account.available(), now) {
            if let Some(grant) = self
                .account_mut(user_id)
                .and_then(|a| a.grants.iter_mut().find(|g| g.id == grant_id))
            {
                grant.remaining -= take;
                grant.dirty = true;
            }
            let transfer_id = self.post(
                Side::User(user_id),
                Side::System(SystemAccount::Expired),
                take,
                &TransferMeta::kind(TransferKind::Expiry),
            );
            self.links.push((transfer_id, grant_id, take));
        }
    }

    /// Moves `amount` between two accounts and records the transfer; returns its id. The caller
    /// has checked every limit.
    pub fn post(
        &mut self,
        debit: Side<'_>,
        credit: Side<'_>,
        amount: i64,
        meta: &TransferMeta<'_>,
    ) -> String {
        let (debit_id, debit_after) = self.move_side(debit, -amount);
        let (credit_id, credit_after) = self.move_side(credit, amount);
        let id = new_id("txn");
        self.transfers.push(TransferRow {
            id: id.clone(),
            kind: meta.kind,
            debit: debit_id,
            credit: credit_id,
            amount,
            debit_after,
            credit_after,
            refund_of: meta.refund_of.map(str::to_string),
            hold_id: meta.hold_id.map(str::to_string),
            order_id: meta.order_id.map(str::to_string),
            description: meta.description.map(str::to_string),
            metadata: meta.metadata.map(str::to_string),
            actor: meta.actor.map(str::to_string),
        });
        id
    }

    fn side_balance(&self, side: &Side<'_>) -> i64 {
        match side {
            Side::System(which) => self.system.get(which).map_or(0, |s| s.balance),
            Side::User(user) => self.accounts.get(*user).map_or(0, |a| a.balance),
            Side::Merchant(merchant) => self.merchants.get(*merchant).map_or(0, |m| m.balance),
        }
    }

    fn move_side(&mut self, side: Side<'_>, delta: i64) -> (String, i64) {
        let before = self.side_balance(&side);
        self.net_change += delta;
        let (id, after) = match side {
            Side::System(which) => {
                let state = self
                    .system
                    .get_mut(&which)
                    .expect("every system account is loaded");
                state.balance += delta;
                state.changed = true;
                (self.system_ids[&which].clone(), state.balance)
            }
            Side::User(user) => {
                let account = self
                    .account_mut(user)
                    .expect("the caller loaded this account");
                account.balance += delta;
                (account.id.clone(), account.balance)
            }
            Side::Merchant(merchant) => {
                let state = self
                    .merchants
                    .get_mut(merchant)
                    .expect("the caller loaded this merchant");
                state.balance += delta;
                state.changed = true;
                (state.id.clone(), state.balance)
            }
        };
        // Balances stay within ±MAX_CREDITS, so one move of at most MAX_CREDITS cannot
        // overflow an i64 before this sees it.
        // Only a move away from zero is refused: a balance already out of range (written
        // before this rule existed) can still be brought back.
        if after.abs() > MAX_CREDITS && after.abs() > before.abs() && self.out_of_range.is_none() {
            self.out_of_range = Some(match side {
                Side::User(user) => format!("user {user}"),
                Side::System(which) => format!("the {which} account"),
                Side::Merchant(merchant) => format!("merchant {merchant}"),
            });
        }
        (id, after)
    }

    /// Debits a user to a system account, burning grants in order; returns the transfer id and
    /// which grants paid.
    pub fn debit(
        &mut self,
        user_id: &str,
        amount: i64,
        to: SystemAccount,
        meta: &TransferMeta<'_>,
    ) -> (String, Vec<PaidBy>) {
        self.debit_preferring(user_id, amount, Side::System(to), meta, |_| false)
    }

    /// Like `debit`, but burns the grants `first` picks before any other (a refunded order's
    /// own grants), each group in the usual burn-down order.
    pub fn debit_preferring(
        &mut self,
        user_id: &str,
        amount: i64,
        to: Side<'_>,
        meta: &TransferMeta<'_>,
        first: impl Fn(&Grant) -> bool,
    ) -> (String, Vec<PaidBy>) {
        let (preferred, others): (Vec<GrantLot>, Vec<GrantLot>) = self
            .accounts
            .get(user_id)
            .map(|a| {
                a.grants
                    .iter()
                    .map(|g| (first(g), g.lot()))
                    .partition::<Vec<_>, _>(|(preferred, _)| *preferred)
            })
            .map(|(p, o)| {
                (
                    p.into_iter().map(|(_, lot)| lot).collect(),
                    o.into_iter().map(|(_, lot)| lot).collect(),
                )
            })
            .unwrap_or_default();
        let (mut taken, rest) = plan_burn(&preferred, amount);
        taken.extend(plan_burn(&others, rest).0);
        let transfer_id = self.post(Side::User(user_id), to, amount, meta);
        let mut paid_by = Vec::with_capacity(taken.len());
        if let Some(account) = self.accounts.get_mut(user_id) {
            for (grant_id, take) in taken {
                if let Some(grant) = account.grants.iter_mut().find(|g| g.id == grant_id) {
                    grant.remaining -= take;
                    grant.dirty = true;
                    paid_by.push(PaidBy {
                        grant_id: grant_id.clone(),
                        source: grant.source.clone(),
                        amount: take,
                    });
                }
                self.links.push((transfer_id.clone(), grant_id, take));
            }
        }
        (transfer_id, paid_by)
    }

    /// Credits a user from a system account as a new grant. When the account was overdrawn the
    /// debt is paid first, so the grant keeps only what ends up above zero.
    pub fn grant(
        &mut self,
        user_id: &str,
        spec: GrantSpec<'_>,
        meta: &TransferMeta<'_>,
    ) -> (String, String) {
        let GrantSpec {
            amount,
            source,
            from,
            priority,
            expires_at,
        } = spec;
        let before = self.accounts.get(user_id).map_or(0, |a| a.balance);
        let transfer_id = self.post(from, Side::User(user_id), amount, meta);
        let grant_id = new_id("grt");
        let now = self.now_ms;
        if let Some(account) = self.account_mut(user_id) {
            let remaining = account.balance.max(0) - before.max(0);
            account.grants.push(Grant {
                id: grant_id.clone(),
                source: source.to_string(),
                priority,
                amount,
                remaining,
                expires_at,
                created_at: now,
                transfer_id: transfer_id.clone(),
                is_new: true,
                dirty: true,
            });
            self.grant_count += 1;
        }
        (transfer_id, grant_id)
    }

    pub fn add_hold(&mut self, hold: NewHold) -> &Hold {
        let id = hold.id.clone();
        self.insert_hold(Hold {
            id: hold.id,
            account_id: hold.account_id,
            user_id: hold.user_id,
            creator: hold.creator,
            amount: hold.amount,
            status: HoldStatus::Held,
            description: hold.description,
            expires_at: hold.expires_at,
            created_at: self.now_ms,
            settled_at: None,
            captured: None,
            transfer_id: None,
            is_new: true,
            dirty: true,
        });
        &self.holds[&id]
    }

    pub fn redeem_coupon(&mut self, coupon_id: &str) {
        self.coupon_redemptions.push(coupon_id.to_string());
    }

    /// Ids of this batch's transfers, not yet written, for an order and of these kinds.
    pub fn unwritten_transfers(&self, order_id: &str, kinds: &[TransferKind]) -> Vec<String> {
        self.transfers
            .iter()
            .filter(|t| t.order_id.as_deref() == Some(order_id) && kinds.contains(&t.kind))
            .map(|t| t.id.clone())
            .collect()
    }
}
