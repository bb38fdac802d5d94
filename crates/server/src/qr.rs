//! QR codes for providers whose payments are scanned with their app (Alipay, WeChat Pay
//! Native): the code as SVG markup, so a client can show it without a QR library.

use qrcode::QrCode;
use qrcode::render::svg;

/// Large enough to scan from a screen; the markup scales anyway.
const MIN_SIZE_PX: u32 = 200;

/// SVG markup of `code`, an `<svg>` element; `None` when the text is too long for any QR code.
pub fn svg(code: &str) -> Option<String> {
    let qr = QrCode::new(code.as_bytes()).ok()?;
    let document = qr
        .render::<svg::Color<'_>>()
        .min_dimensions(MIN_SIZE_PX, MIN_SIZE_PX)
        .build();
    // Without its XML declaration, so the markup can go straight into an HTML page (the web
    // UI's order page shows it) and is still a complete SVG image.
    let element = match document.find("<svg") {
        Some(start) => document[start..].to_string(),
        None => document,
    };
    Some(element)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_payment_code_renders_as_svg() {
        let markup = super::svg("https://qr.alipay.com/bax03431ljhokirwl38f00a7").expect("fits");
        assert!(markup.starts_with("<svg"), "{markup:.40}");
        assert!(markup.trim_end().ends_with("</svg>"));
    }
}
