//! The `Accept` header as DICOMweb uses it: media ranges with `type` and `transfer-syntax`
//! parameters (PS3.18 8.7.3), in the order the client listed them.

use axum::http::{header, HeaderMap};

/// One media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    /// Lower-case `type/subtype`.
    pub media: String,
    params: Vec<(String, String)>,
}

impl MediaRange {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this range admits `media` (`*/*`, `image/*` or exact).
    pub fn admits(&self, media: &str) -> bool {
        self.media == "*/*"
            || self.media == media
            || self
                .media
                .strip_suffix("/*")
                .is_some_and(|top| media.split('/').next() == Some(top))
    }

    /// Whether this range admits parts of `media` in `transfer_syntax`, as a multipart body
    /// (`multipart/related; type=…`) or bare, and if so the media type to label them with.
    /// `native` says whether `transfer_syntax` is the default one for octet streams (so an
    /// absent `transfer-syntax` parameter admits it).
    pub fn part_media(
        &self,
        media: &'static str,
        transfer_syntax: &str,
        native: bool,
    ) -> Option<&'static str> {
        let part = match self.media.as_str() {
            "*/*" | "multipart/*" => return Some(media),
            "multipart/related" => self.param("type").unwrap_or("application/octet-stream"),
            m => m,
        };
        // The `x-` names of the first DICOMweb edition are still sent by some clients.
        let part = match part {
            "image/x-dicom-rle" => "image/dicom-rle",
            "image/x-jls" => "image/jls",
            p => p,
        };
        let syntax_ok = |absent_ok: bool| match self.param("transfer-syntax") {
            None => absent_ok,
            Some("*") => true,
            Some(ts) => ts == transfer_syntax,
        };
        if part == "application/octet-stream" {
            return syntax_ok(native).then_some("application/octet-stream");
        }
        let type_ok = part == media
            || part == "*/*"
            || part
                .strip_suffix("/*")
                .is_some_and(|top| media.split('/').next() == Some(top));
        (type_ok && syntax_ok(true)).then_some(media)
    }
}

/// The media ranges of `Accept`, in order; an absent or empty header is `*/*`.
pub fn ranges(headers: &HeaderMap) -> Vec<MediaRange> {
    let anything = || {
        vec![MediaRange {
            media: "*/*".into(),
            params: Vec::new(),
        }]
    };
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return anything();
    };
    let ranges: Vec<MediaRange> = accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next()?.to_ascii_lowercase();
            if media.is_empty() {
                return None;
            }
            let params = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| {
                    (
                        k.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').to_owned(),
                    )
                })
                .collect();
            Some(MediaRange { media, params })
        })
        .collect();
    if ranges.is_empty() {
        anything()
    } else {
        ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn of(accept: &str) -> Vec<MediaRange> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        ranges(&h)
    }

    #[test]
    fn frames_accept_forms() {
        let explicit = "1.2.840.10008.1.2.1";
        let jpeg = "1.2.840.10008.1.2.4.50";
        let octet = "application/octet-stream";
        let any = &of("multipart/related; type=\"application/octet-stream\"; transfer-syntax=*")[0];
        assert_eq!(any.part_media(octet, explicit, true), Some(octet));
        assert_eq!(any.part_media("image/jpeg", jpeg, false), Some(octet));
        let plain = &of("multipart/related; type=\"application/octet-stream\"")[0];
        assert_eq!(plain.part_media(octet, explicit, true), Some(octet));
        assert_eq!(plain.part_media("image/jpeg", jpeg, false), None);
        let as_jpeg = &of("multipart/related; type=\"image/jpeg\"")[0];
        assert_eq!(
            as_jpeg.part_media("image/jpeg", jpeg, false),
            Some("image/jpeg")
        );
        assert_eq!(as_jpeg.part_media(octet, explicit, true), None);
        let other_ts =
            &of("multipart/related; type=\"image/jpeg\"; transfer-syntax=1.2.840.10008.1.2.4.70")
                [0];
        assert_eq!(other_ts.part_media("image/jpeg", jpeg, false), None);
        assert_eq!(
            of("*/*")[0].part_media("image/jpeg", jpeg, false),
            Some("image/jpeg")
        );
    }

    #[test]
    fn image_ranges_in_order() {
        let r = of("image/png, image/jpeg;q=0.5");
        assert_eq!(r.len(), 2);
        assert!(r[0].admits("image/png") && !r[0].admits("image/jpeg"));
        assert!(of("image/*")[0].admits("image/jpeg"));
        assert!(ranges(&HeaderMap::new())[0].admits("image/png"));
    }
}
