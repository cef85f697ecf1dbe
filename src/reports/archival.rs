//! What makes a rendered PDF a PDF/A-2b document, fit to be read in 2041 without the software
//! that made it: an sRGB output intent (the colours on the page are sRGB), and XMP metadata that
//! declares the conformance and repeats the document information. Fonts are already embedded
//! and the file identifier set by the renderer.

use pdf_writer::types::OutputIntentSubtype;
use pdf_writer::writers::Catalog;
use pdf_writer::{Pdf, Ref, TextStr};

use super::pdf::Layout;

/// LittleCMS's sRGB profile (ICC v4.4, display class): see assets/icc/README.
static SRGB: &[u8] = include_bytes!("../../assets/icc/sRGB.icc");

const CONDITION: &str = "sRGB IEC61966-2.1";

/// Names the output intent in the catalog; `profile` is where [`write`] puts the ICC profile.
pub fn intent(catalog: &mut Catalog<'_>, profile: Ref) {
    catalog
        .output_intents()
        .push()
        .subtype(OutputIntentSubtype::PDFA)
        .output_condition_identifier(TextStr(CONDITION))
        .info(TextStr(CONDITION))
        .dest_output_profile(profile);
}

/// Writes the ICC profile and the XMP metadata stream the catalog names.
pub fn write(pdf: &mut Pdf, metadata: Ref, profile: Ref, layout: &Layout) {
    pdf.icc_profile(profile, SRGB).n(3);
    pdf.metadata(metadata, xmp(layout).as_bytes());
}

/// The XMP packet: PDF/A-2 level B, with the same title, author, producer and dates as the
/// document information dictionary.
fn xmp(layout: &Layout) -> String {
    let created = layout
        .created
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(|t| {
            format!("<xmp:CreateDate>{t}</xmp:CreateDate><xmp:ModifyDate>{t}</xmp:ModifyDate>")
        })
        .unwrap_or_default();
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n\
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n\
         <rdf:Description rdf:about=\"\" xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" \
         xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\">\n\
         <pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>\n\
         <dc:format>application/pdf</dc:format>\n\
         <dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{title}</rdf:li></rdf:Alt></dc:title>\n\
         <dc:creator><rdf:Seq><rdf:li>{author}</rdf:li></rdf:Seq></dc:creator>\n\
         {created}<pdf:Producer>telecardio</pdf:Producer>\n\
         </rdf:Description>\n</rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>",
        title = escape(&layout.title),
        author = escape(&layout.author),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_an_rgb_display_profile_older_than_v5() {
        // What PDF/A's output intent asks of its profile (ISO 19005-2, 6.2.3).
        assert_eq!(&SRGB[36..40], b"acsp");
        assert_eq!(&SRGB[12..16], b"mntr");
        assert_eq!(&SRGB[16..20], b"RGB ");
        assert!(SRGB[8] < 5);
        assert_eq!(
            u32::from_be_bytes([SRGB[0], SRGB[1], SRGB[2], SRGB[3]]) as usize,
            SRGB.len()
        );
    }

    #[test]
    fn metadata_declares_pdfa_2b_and_escapes_text() {
        let layout = Layout {
            title: "Išvada <A&B>".into(),
            author: "Aušra \"Ž\"".into(),
            ..Layout::default()
        };
        let packet = xmp(&layout);
        assert!(packet
            .contains("<pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>"));
        assert!(packet.contains("Išvada &lt;A&amp;B&gt;"));
        assert!(packet.contains("Aušra &quot;Ž&quot;"));
        assert!(roxmltree::Document::parse(&packet).is_ok(), "{packet}");
    }
}
