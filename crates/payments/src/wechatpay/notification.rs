//! WeChat Pay callbacks once their signature is verified: the envelope, its resource
//! decrypted with the APIv3 key, and what the transaction or refund inside says.

use serde::Deserialize;

use super::aead::ApiV3Key;

pub const EVENT_TRANSACTION_SUCCESS: &str = "TRANSACTION.SUCCESS";
pub const EVENT_REFUND_SUCCESS: &str = "REFUND.SUCCESS";

#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub id: String,
    pub event_type: String,
    pub resource: Resource,
}

#[derive(Debug, Deserialize)]
pub struct Resource {
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: Option<String>,
    pub nonce: String,
    #[serde(default)]
    pub original_type: Option<String>,
}

impl Resource {
    pub fn decrypt(&self, key: &ApiV3Key) -> Result<Vec<u8>, String> {
        if self.algorithm != "AEAD_AES_256_GCM" {
            return Err(format!("unknown resource algorithm {}", self.algorithm));
        }
        key.decrypt(
            &self.nonce,
            self.associated_data.as_deref().unwrap_or_default(),
            &self.ciphertext,
        )
        .map_err(|e| e.to_string())
    }
}

/// A transaction, as in a payment callback and an order query's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Transaction {
    pub mchid: String,
    pub appid: String,
    pub out_trade_no: String,
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// `SUCCESS`, `NOTPAY`, `CLOSED`, `REFUND`, `USERPAYING`, `PAYERROR`, `REVOKED`.
    pub trade_state: String,
    #[serde(default)]
    pub trade_state_desc: Option<String>,
    /// Bursar's payment id, sent with the order.
    #[serde(default)]
    pub attach: Option<String>,
    #[serde(default)]
    pub amount: Option<TransactionAmount>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TransactionAmount {
    /// Fen.
    pub total: Option<i64>,
    pub currency: Option<String>,
}

impl Transaction {
    pub fn paid(&self) -> bool {
        self.trade_state == "SUCCESS"
    }
}

/// A refund, as in a refund callback.
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub mchid: String,
    pub out_trade_no: String,
    pub out_refund_no: String,
    #[serde(default)]
    pub refund_id: Option<String>,
    /// `SUCCESS`, `CLOSED`, `ABNORMAL`.
    pub refund_status: String,
    pub amount: RefundAmount,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefundAmount {
    /// What this refund returned, in fen.
    pub refund: i64,
}
