//! Every string a page shows comes from one catalog per language (Fluent files compiled into
//! the binary). A key missing from a catalog renders as `⟦key⟧`, which the page-walking tests
//! look for, so an untranslated string cannot slip through quietly.

use std::sync::LazyLock;

use axum::http::HeaderMap;
use bursar_core::Language;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The catalogs, in the order of [`LANGUAGES`].
const SOURCES: [(&str, &str); 3] = [
    ("en", include_str!("../../locales/en.ftl")),
    ("zh-Hans", include_str!("../../locales/zh-Hans.ftl")),
    ("zh-Hant", include_str!("../../locales/zh-Hant.ftl")),
];

pub const LANGUAGES: [Language; 3] = [Language::En, Language::ZhHans, Language::ZhHant];

/// Marks a key the catalog lacks.
pub const MISSING_OPEN: char = '⟦';

static BUNDLES: LazyLock<Vec<FluentBundle<FluentResource>>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|(tag, source)| {
            let id: LanguageIdentifier = tag.parse().expect("a valid language tag");
            let resource = FluentResource::try_new((*source).to_string())
                .unwrap_or_else(|(_, errors)| panic!("the {tag} catalog parses: {errors:?}"));
            let mut bundle = FluentBundle::new_concurrent(vec![id]);
            // No Unicode isolation marks around values: pages are plain HTML in one direction.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .unwrap_or_else(|errors| panic!("the {tag} catalog has duplicates: {errors:?}"));
            bundle
        })
        .collect()
});

fn index(language: Language) -> usize {
    match language {
        Language::En => 0,
        Language::ZhHans => 1,
        Language::ZhHant => 2,
    }
}

/// The keys of one catalog, for the test that every catalog has every key.
pub fn keys(language: Language) -> Vec<String> {
    let source = SOURCES[index(language)].1;
    let resource = FluentResource::try_new(source.to_string()).unwrap_or_else(|(r, _)| r);
    resource
        .entries()
        .filter_map(|entry| match entry {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
            _ => None,
        })
        .collect()
}

/// Looks strings up in one language; templates call `t.t("key")`.
#[derive(Debug, Clone, Copy)]
pub struct Translator {
    pub language: Language,
}

impl Translator {
    pub fn new(language: Language) -> Self {
        Self { language }
    }

    /// The `lang` attribute of the page.
    pub fn html_lang(&self) -> &'static str {
        match self.language {
            Language::En => "en",
            Language::ZhHans => "zh-Hans",
            Language::ZhHant => "zh-Hant",
        }
    }

    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The name of one value of a set (`tk("status", "paid")` is `status-paid`).
    pub fn tk(&self, set: &str, value: &str) -> String {
        self.t(&format!("{set}-{value}"))
    }

    /// A message with one named value, e.g. `t.t1("balance-line", "amount", "1,000")`.
    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name, FluentValue::from(value.to_string()));
        self.format(key, Some(&args))
    }

    /// A message with two named values.
    pub fn t2(&self, key: &str, name: &str, value: &str, name2: &str, value2: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name, FluentValue::from(value.to_string()));
        args.set(name2, FluentValue::from(value2.to_string()));
        self.format(key, Some(&args))
    }

    fn format(&self, key: &str, args: Option<&FluentArgs>) -> String {
        let bundle = &BUNDLES[index(self.language)];
        let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
            tracing::warn!(
                key,
                language = self.html_lang(),
                "a page asked for a string the catalog lacks"
            );
            return format!("{MISSING_OPEN}{key}⟧");
        };
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::warn!(key, ?errors, "a catalog string did not format cleanly");
        }
        text.into_owned()
    }
}

/// A language from a tag as browsers and people write it (`zh-CN`, `zh-TW`, `zh-Hant-HK`, `en-GB`).
pub fn parse_tag(tag: &str) -> Option<Language> {
    let tag = tag.trim().to_ascii_lowercase();
    let mut parts = tag.split(['-', '_']);
    match parts.next()? {
        "en" => Some(Language::En),
        "zh" => {
            let rest: Vec<&str> = parts.collect();
            if rest
                .iter()
                .any(|p| matches!(*p, "hant" | "tw" | "hk" | "mo"))
            {
                Some(Language::ZhHant)
            } else {
                Some(Language::ZhHans)
            }
        }
        _ => None,
    }
}

/// The first language of `Accept-Language` (by quality) that Bursar has.
pub fn from_accept_language(headers: &HeaderMap) -> Option<Language> {
    let header = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)?
        .to_str()
        .ok()?;
    let mut ranked: Vec<(f32, usize, Language)> = header
        .split(',')
        .enumerate()
        .filter_map(|(position, item)| {
            let mut pieces = item.split(';');
            let language = parse_tag(pieces.next()?)?;
            let quality = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (quality > 0.0).then_some((quality, position, language))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.first().map(|(_, _, language)| *language)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_has_every_key_of_every_other() {
        let mut all: Vec<String> = LANGUAGES.iter().flat_map(|l| keys(*l)).collect();
        all.sort();
        all.dedup();
        for language in LANGUAGES {
            let have = keys(language);
            let missing: Vec<&String> = all.iter().filter(|k| !have.contains(k)).collect();
            assert!(missing.is_empty(), "{language:?} lacks {missing:?}");
        }
        assert!(all.len() > 50, "the catalogs hold the pages' strings");
    }

    #[test]
    fn a_missing_key_is_marked_not_hidden() {
        let t = Translator::new(Language::ZhHant);
        assert!(t.t("no-such-key").starts_with(MISSING_OPEN));
        assert_ne!(
            t.t("nav-sign-in"),
            Translator::new(Language::En).t("nav-sign-in")
        );
    }

    #[test]
    fn browser_tags_map_to_the_three_languages() {
        for (tag, language) in [
            ("zh-CN", Language::ZhHans),
            ("zh-Hans", Language::ZhHans),
            ("zh", Language::ZhHans),
            ("zh-TW", Language::ZhHant),
            ("zh-HK", Language::ZhHant),
            ("zh-Hant", Language::ZhHant),
            ("zh-Hant-HK", Language::ZhHant),
            ("en-GB", Language::En),
        ] {
            assert_eq!(parse_tag(tag), Some(language), "{tag}");
        }
        assert_eq!(parse_tag("fr-FR"), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::ACCEPT_LANGUAGE,
            "fr;q=1, en;q=0.5, zh-TW;q=0.8".parse().expect("header"),
        );
        assert_eq!(from_accept_language(&headers), Some(Language::ZhHant));
    }
}
