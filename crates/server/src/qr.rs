//! QR codes for providers whose payments are scanned with their app (Alipay, WeChat Pay
//! Native): the code as SVG markup, so a client can show it without a QR library.

use qrcode::QrCode;
use qrcode::render::svg;

/// Large enough to scan from a screen; the markup scales anyway.
const MIN_SIZE_PX: u32 = 200;

/// SVG markup of `code`; `None` when the text is too long for any QR code.
pub fn svg(code: &str) -> Option<String> {
    let qr = QrCode::new(code.as_bytes()).ok()?;
    Some(
        qr.render::<svg::Color<'_>>()
            .min_dimensions(MIN_SIZE_PX, MIN_SIZE_PX)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_payment_code_renders_as_svg() {
        let markup = super::svg("https://qr.alipay.com/bax03431ljhokirwl38f00a7").expect("fits");
        assert!(markup.starts_with("<?xml"), "{markup:.40}");
        assert!(markup.contains("<svg"));
    }
}
