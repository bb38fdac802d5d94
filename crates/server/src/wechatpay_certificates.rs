//! WeChat Pay's platform certificates, for merchants without a WeChat Pay public key. The
//! `wechatpay_certificates` job downloads them twice a day (WeChat Pay rotates them with
//! overlap) and stores them as PEM in `settings`, so every instance can load what one of them
//! fetched: at start, and when a callback names a serial this instance does not know.

use bursar_payments::wechatpay::WechatPay;
use bursar_store::{Store, settings};

use crate::AppState;

const SETTING: &str = "wechatpay_platform_certificates";

/// At start: installs the stored certificates, or downloads them when none are stored. A
/// WeChat Pay that cannot be reached does not stop the server; the job tries again.
pub async fn load_stored(store: &Store, wechatpay: &WechatPay) {
    if !wechatpay.uses_certificates() {
        return;
    }
    match install_stored(store, wechatpay).await {
        Ok(true) => {}
        Ok(false) => {
            if let Err(error) = download(store, wechatpay).await {
                tracing::warn!(%error, "WeChat Pay platform certificates could not be downloaded at start; the job retries");
            }
        }
        Err(error) => tracing::warn!(%error, "stored WeChat Pay platform certificates unreadable"),
    }
}

/// Installs what is stored; `false` when nothing is.
async fn install_stored(store: &Store, wechatpay: &WechatPay) -> anyhow::Result<bool> {
    let Some(json) = settings::get(&store.db, SETTING).await? else {
        return Ok(false);
    };
    let pems: Vec<String> = serde_json::from_str(&json)?;
    wechatpay
        .install_certificates(&pems)
        .map_err(anyhow::Error::msg)?;
    Ok(true)
}

/// Downloads, verifies and installs the certificates, then stores them for other instances.
pub async fn download(store: &Store, wechatpay: &WechatPay) -> anyhow::Result<()> {
    let pems = wechatpay.refresh_certificates().await?;
    settings::put(&store.db, SETTING, &serde_json::to_string(&pems)?).await?;
    tracing::info!(serials = ?wechatpay.certificate_serials(), "WeChat Pay platform certificates refreshed");
    Ok(())
}

/// Before a callback is verified: a serial this instance does not know may be a certificate
/// another instance has stored since; reload (at most once a minute).
pub async fn reload_for_serial(state: &AppState, serial: Option<&str>, now_s: i64) {
    let (Some(wechatpay), Some(serial)) = (&state.payments.wechatpay, serial) else {
        return;
    };
    if wechatpay.certificate_reload_due(serial, now_s)
        && let Err(error) = install_stored(&state.store, wechatpay).await
    {
        tracing::warn!(%error, "stored WeChat Pay platform certificates unreadable");
    }
}
