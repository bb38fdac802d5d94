//! `PrepareTopup`: an auto top-up's decision and its order, taken in the writer's batch.

use sqlx::AnyConnection;

use super::super::Outcome;
use super::super::state::UnitOfWork;
use crate::StoreError;
use crate::auto_topup::{TopupSettings, TopupStep, decide_on};
use crate::jobs::JobClaim;

pub(super) async fn prepare(
    uow: &mut UnitOfWork,
    conn: &mut AnyConnection,
    user_id: &str,
    settings: &TopupSettings,
    completes: Option<&JobClaim>,
) -> Result<Outcome, StoreError> {
    uow.load_users(conn, &[user_id]).await?;
    let balance = super::balance(uow, user_id);
    let step = decide_on(conn, uow.dialect, user_id, balance, settings, uow.now_ms).await?;
    if matches!(step, TopupStep::Stopped { .. }) {
        // Its notification and its event's deliveries are jobs.
        uow.note_jobs_enqueued();
    }
    // A charge's job is completed with the charge's outcome, not here.
    let job_completed = match completes {
        Some(claim) if !matches!(step, TopupStep::Charge { .. }) => {
            Some(crate::jobs::complete_in(conn, claim, uow.now_ms).await?)
        }
        _ => None,
    };
    Ok(Outcome::TopupPrepared {
        step,
        job_completed,
    })
}
