//! `wechatpay_certificates`: downloads WeChat Pay's platform certificates and stores them for
//! every instance. Scheduled twice a day, only when no WeChat Pay public key is configured.

use std::time::Duration;

use bursar_store::jobs::ClaimedJob;
use bursar_worker::{Job, JobError, JobFuture};

use crate::AppState;

pub const KIND: &str = "wechatpay_certificates";
/// WeChat Pay publishes a new certificate well before the old one expires; twice a day is
/// often enough to always hold the one it signs with.
pub const PERIOD: Duration = Duration::from_secs(12 * 3600);

pub struct WechatpayCertificates;

impl Job<AppState> for WechatpayCertificates {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run<'a>(&'a self, state: &'a AppState, _job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let Some(wechatpay) = &state.payments.wechatpay else {
                return Ok(());
            };
            if !wechatpay.uses_certificates() {
                return Ok(());
            }
            crate::wechatpay_certificates::download(&state.store, wechatpay)
                .await
                .map_err(|e| JobError::Retry(e.to_string()))
        })
    }
}
