//! ECPay's server-to-server notifications, form-encoded: the payment result (`ReturnURL`,
//! `RtnCode=1` when paid) and the notice that an ATM virtual account was issued
//! (`PaymentInfoURL`, `RtnCode=2`, with `BankCode`, `vAccount`, `ExpireDate`). Both are signed
//! with `CheckMacValue` over every field they carry, whatever those are.

use super::checkmac::{self, HashKeys, MacHash};

/// A notification's fields as decoded from the body, in the order received.
#[derive(Debug, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Form-decodes a body (`+` is a space, `%XX` a byte of UTF-8).
    pub fn decode(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether `CheckMacValue` matches the other fields. A form that names a field twice is
    /// refused: which value was signed would be ambiguous.
    pub fn verify(&self, keys: &HashKeys) -> bool {
        let mut names: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        let unique = names.windows(2).all(|pair| pair[0] != pair[1]);
        unique && checkmac::verify(keys, MacHash::Sha256, self.pairs())
    }
}

/// `RtnCode` values that mean something to Bursar.
pub const RTN_PAID: &str = "1";
pub const RTN_ATM_ISSUED: &str = "2";

/// What a verified notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Paid (`RtnCode=1`).
    Paid(Payment),
    /// An ATM virtual account was issued; the person pays into it later.
    AtmIssued { payment: Payment, atm: AtmAccount },
    /// Anything else: a failed payment, or a code for CVS/BARCODE Bursar does not show.
    Other {
        payment: Payment,
        rtn_code: String,
        rtn_msg: String,
    },
}

/// The fields every notification carries about its trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub merchant_id: String,
    pub merchant_trade_no: String,
    /// ECPay's own trade number.
    pub trade_no: String,
    /// Whole New Taiwan dollars.
    pub trade_amt: Option<i64>,
    /// Bursar's payment id, as sent in `CustomField1`.
    pub payment_id: Option<String>,
    /// `SimulatePaid=1`: a payment simulated from ECPay's dashboard; nobody paid.
    pub simulated: bool,
    pub payment_type: String,
}

/// Where the person pays an ATM order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtmAccount {
    pub bank_code: String,
    pub v_account: String,
    /// As ECPay writes it (`yyyy/MM/dd`, Taiwan time).
    pub expire_date: String,
}

/// Reads a verified notification; `Err` names what is missing.
pub fn read(fields: &Fields) -> Result<Notice, String> {
    let required = |name: &str| {
        fields
            .get(name)
            .map(str::to_string)
            .ok_or_else(|| format!("the notification has no {name}"))
    };
    let payment = Payment {
        merchant_id: required("MerchantID")?,
        merchant_trade_no: required("MerchantTradeNo")?,
        trade_no: fields.get("TradeNo").unwrap_or_default().to_string(),
        trade_amt: fields.get("TradeAmt").and_then(|v| v.parse().ok()),
        payment_id: fields
            .get("CustomField1")
            .filter(|v| !v.is_empty())
            .map(str::to_string),
        simulated: fields.get("SimulatePaid") == Some("1"),
        payment_type: fields.get("PaymentType").unwrap_or_default().to_string(),
    };
    let rtn_code = required("RtnCode")?;
    Ok(match rtn_code.as_str() {
        RTN_PAID => Notice::Paid(payment),
        RTN_ATM_ISSUED => Notice::AtmIssued {
            payment,
            atm: AtmAccount {
                bank_code: required("BankCode")?,
                v_account: required("vAccount")?,
                expire_date: required("ExpireDate")?,
            },
        },
        _ => Notice::Other {
            payment,
            rtn_msg: fields.get("RtnMsg").unwrap_or_default().to_string(),
            rtn_code,
        },
    })
}
