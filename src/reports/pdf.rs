//! A signed report laid out for a person: an A4 PDF that a clinic's DICOM viewer shows next to
//! the images and that prints the same everywhere.
//!
//! Text is set in DejaVu Sans, embedded (subset to the glyphs used) with a ToUnicode map, so
//! Lithuanian letters render on readers that have no such font and can be searched and copied.
//! Layout is plain: a heading, labelled facts (patient, clinic, examination), the report's
//! sections as wrapped paragraphs, the signature block, and page numbers; long reports flow onto
//! further pages. The file is PDF/A-2b (see `archival`).

use std::collections::BTreeMap;
use std::io::Write;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Date, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use subsetter::GlyphRemapper;

static REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
/// Space kept free at the bottom for the page number.
const FOOTER: f32 = 40.0;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the embedded font cannot be read: {0}")]
    Font(String),
    #[error("the PDF could not be compressed: {0}")]
    Compress(#[from] std::io::Error),
}

/// What goes on the page, in reading order.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub title: String,
    pub subtitle: String,
    /// Label and value pairs under the title (patient, clinic, examination, referral).
    pub facts: Vec<(String, String)>,
    /// Headed paragraphs; empty bodies are left out.
    pub sections: Vec<(String, String)>,
    /// The signature block, one line each.
    pub signature: Vec<String>,
    /// Document information: title, author (the signer), and when it was made.
    pub author: String,
    pub created: Option<time::OffsetDateTime>,
    /// 16 bytes that identify this document (the PDF file identifier).
    pub file_id: [u8; 16],
}

/// Renders the layout.
pub fn render(layout: &Layout) -> Result<Vec<u8>, PdfError> {
    let mut fonts = [
        Font::new(REGULAR, "TCDVSR+DejaVuSans")?,
        Font::new(BOLD, "TCDVSB+DejaVuSans-Bold")?,
    ];
    let mut pages = Pages::new();
    pages.text(&mut fonts, Style::Title, &layout.title);
    if !layout.subtitle.is_empty() {
        pages.text(&mut fonts, Style::Small, &layout.subtitle);
    }
    pages.gap(6.0);
    pages.rule();
    let label_width = layout
        .facts
        .iter()
        .map(|(label, _)| fonts[1].width(label, Style::Body.size()))
        .fold(0.0, f32::max);
    let column = MARGIN + label_width.min(PAGE_WIDTH / 2.0) + 12.0;
    for (label, value) in &layout.facts {
        pages.fact(&mut fonts, column, label, value);
    }
    pages.rule();
    for (heading, body) in &layout.sections {
        if body.trim().is_empty() {
            continue;
        }
        pages.gap(4.0);
        pages.text(&mut fonts, Style::Heading, heading);
        for paragraph in body.trim().lines() {
            pages.text(&mut fonts, Style::Body, paragraph);
        }
    }
    pages.gap(10.0);
    pages.rule();
    for line in &layout.signature {
        pages.text(&mut fonts, Style::Body, line);
    }
    pages.write(layout, &mut fonts)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Title,
    Heading,
    Body,
    Small,
}

impl Style {
    fn font(self) -> usize {
        match self {
            Style::Title | Style::Heading => 1,
            Style::Body | Style::Small => 0,
        }
    }

    fn size(self) -> f32 {
        match self {
            Style::Title => 16.0,
            Style::Heading => 11.5,
            Style::Body => 10.5,
            Style::Small => 8.5,
        }
    }
}

/// One embedded font: the face for measuring, and the glyphs used so far (renumbered for the
/// subset) with the characters they stand for.
struct Font {
    data: &'static [u8],
    face: ttf_parser::Face<'static>,
    base_name: &'static str,
    remapper: GlyphRemapper,
    /// New glyph id → (character, advance in font units).
    used: BTreeMap<u16, (char, u16)>,
}

impl Font {
    fn new(data: &'static [u8], base_name: &'static str) -> Result<Font, PdfError> {
        let face = ttf_parser::Face::parse(data, 0).map_err(|e| PdfError::Font(e.to_string()))?;
        let mut remapper = GlyphRemapper::new();
        // Glyph 0 (.notdef) stays glyph 0 in every subset.
        remapper.remap(0);
        Ok(Font {
            data,
            face,
            base_name,
            remapper,
            used: BTreeMap::new(),
        })
    }

    fn advance(&self, c: char) -> u16 {
        let glyph = self
            .face
            .glyph_index(c)
            .or_else(|| self.face.glyph_index('?'))
            .unwrap_or(ttf_parser::GlyphId(0));
        self.face.glyph_hor_advance(glyph).unwrap_or(0)
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        let units: u32 = text.chars().map(|c| u32::from(self.advance(c))).sum();
        units as f32 * size / f32::from(self.face.units_per_em())
    }

    /// The text as two-byte codes of the subset's glyphs (Identity-H).
    /// A character the font lacks is shown as `?`: PDF/A forbids showing .notdef.
    fn encode(&mut self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let (c, old) = match self.face.glyph_index(c) {
                Some(glyph) => (c, glyph),
                None => (
                    '?',
                    self.face.glyph_index('?').unwrap_or(ttf_parser::GlyphId(0)),
                ),
            };
            let new = self.remapper.remap(old.0);
            let advance = self.face.glyph_hor_advance(old).unwrap_or(0);
            self.used.entry(new).or_insert((c, advance));
            out.extend_from_slice(&new.to_be_bytes());
        }
        out
    }

    fn scale(&self, units: i16) -> f32 {
        f32::from(units) * 1000.0 / f32::from(self.face.units_per_em())
    }
}

enum Op {
    Text {
        font: usize,
        size: f32,
        x: f32,
        y: f32,
        codes: Vec<u8>,
    },
    Rule {
        y: f32,
    },
}

/// Page content as it is laid out, written out once the page count is known.
struct Pages {
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Pages {
    fn new() -> Pages {
        Pages {
            pages: vec![Vec::new()],
            y: PAGE_HEIGHT - MARGIN,
        }
    }

    fn room(&mut self, height: f32) {
        if self.y - height < MARGIN + FOOTER {
            self.pages.push(Vec::new());
            self.y = PAGE_HEIGHT - MARGIN;
        }
    }

    fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.push(op);
        }
    }

    fn gap(&mut self, height: f32) {
        self.y -= height;
    }

    fn rule(&mut self) {
        self.room(8.0);
        self.y -= 4.0;
        let y = self.y;
        self.push(Op::Rule { y });
        self.y -= 8.0;
    }

    /// A paragraph, wrapped to the text width.
    fn text(&mut self, fonts: &mut [Font; 2], style: Style, text: &str) {
        let (font, size) = (style.font(), style.size());
        let width = PAGE_WIDTH - 2.0 * MARGIN;
        for line in wrap(&fonts[font], text, size, width) {
            self.line(fonts, font, size, MARGIN, &line);
        }
    }

    /// "Label: value" with the value wrapped in a column of its own.
    fn fact(&mut self, fonts: &mut [Font; 2], column: f32, label: &str, value: &str) {
        let size = Style::Body.size();
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        let value = value.as_str();
        let lines = wrap(&fonts[0], value, size, PAGE_WIDTH - MARGIN - column);
        self.room(size * 1.45);
        let y = self.y - size;
        let codes = fonts[1].encode(label);
        self.push(Op::Text {
            font: 1,
            size,
            x: MARGIN,
            y,
            codes,
        });
        for line in lines {
            self.line(fonts, 0, size, column, &line);
        }
    }

    fn line(&mut self, fonts: &mut [Font; 2], font: usize, size: f32, x: f32, text: &str) {
        let leading = size * 1.45;
        self.room(leading);
        let y = self.y - size;
        let codes = fonts[font].encode(text);
        self.push(Op::Text {
            font,
            size,
            x,
            y,
            codes,
        });
        self.y -= leading;
    }

    fn write(mut self, layout: &Layout, fonts: &mut [Font; 2]) -> Result<Vec<u8>, PdfError> {
        let total = self.pages.len();
        for (n, page) in self.pages.iter_mut().enumerate() {
            let footer = format!("{} — {} / {}", layout.title, n + 1, total);
            let size = Style::Small.size();
            let x = PAGE_WIDTH - MARGIN - fonts[0].width(&footer, size);
            page.push(Op::Text {
                font: 0,
                size,
                x,
                y: MARGIN - size,
                codes: fonts[0].encode(&footer),
            });
        }

        let mut pdf = Pdf::new();
        let mut next = 1;
        let mut alloc = || {
            let id = Ref::new(next);
            next += 1;
            id
        };
        let catalog = alloc();
        let tree = alloc();
        let info = alloc();
        let font_refs: Vec<Ref> = fonts.iter().map(|_| alloc()).collect();
        let page_refs: Vec<(Ref, Ref)> = self.pages.iter().map(|_| (alloc(), alloc())).collect();

        let (metadata, profile) = (alloc(), alloc());
        {
            let mut catalog = pdf.catalog(catalog);
            catalog.pages(tree).metadata(metadata);
            super::archival::intent(&mut catalog, profile);
        }
        super::archival::write(&mut pdf, metadata, profile, layout);
        pdf.pages(tree)
            .kids(page_refs.iter().map(|(page, _)| *page))
            .count(total as i32);
        for ((page_ref, content_ref), ops) in page_refs.iter().zip(&self.pages) {
            let mut page = pdf.page(*page_ref);
            page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
            page.parent(tree);
            page.contents(*content_ref);
            let mut resources = page.resources();
            let mut names = resources.fonts();
            names.pair(Name(b"F0"), font_refs[0]);
            names.pair(Name(b"F1"), font_refs[1]);
            names.finish();
            resources.finish();
            page.finish();
            let mut content = Content::new();
            for op in ops {
                match op {
                    Op::Text {
                        font,
                        size,
                        x,
                        y,
                        codes,
                    } => {
                        content.begin_text();
                        content.set_font(Name(if *font == 0 { b"F0" } else { b"F1" }), *size);
                        content.next_line(*x, *y);
                        content.show(Str(codes));
                        content.end_text();
                    }
                    Op::Rule { y } => {
                        content.set_line_width(0.6);
                        content.move_to(MARGIN, *y);
                        content.line_to(PAGE_WIDTH - MARGIN, *y);
                        content.stroke();
                    }
                }
            }
            let stream = deflate(&content.finish())?;
            pdf.stream(*content_ref, &stream)
                .filter(Filter::FlateDecode);
        }
        for (font, type0) in fonts.iter().zip(&font_refs) {
            embed(&mut pdf, &mut alloc, font, *type0)?;
        }

        let mut document = pdf.document_info(info);
        document.title(TextStr(&layout.title));
        document.author(TextStr(&layout.author));
        document.producer(TextStr("telecardio"));
        if let Some(at) = layout.created {
            let date = Date::new(at.year().clamp(0, 9999) as u16)
                .month(at.month() as u8)
                .day(at.day())
                .hour(at.hour())
                .minute(at.minute())
                .second(at.second())
                .utc_offset_hour(0)
                .utc_offset_minute(0);
            document.creation_date(date);
        }
        document.finish();
        pdf.set_file_id((layout.file_id.to_vec(), layout.file_id.to_vec()));
        Ok(pdf.finish())
    }
}

/// Type 0 font over a CID-keyed TrueType subset, with widths and a ToUnicode map.
fn embed(
    pdf: &mut Pdf,
    alloc: &mut impl FnMut() -> Ref,
    font: &Font,
    type0: Ref,
) -> Result<(), PdfError> {
    let (cid, descriptor, file, cmap) = (alloc(), alloc(), alloc(), alloc());
    let base = Name(font.base_name.as_bytes());
    let system = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    pdf.type0_font(type0)
        .base_font(base)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap);
    let widths: Vec<f32> = (0..font.remapper.num_gids())
        .map(|gid| {
            font.used.get(&gid).map_or(0.0, |(_, advance)| {
                f32::from(*advance) * 1000.0 / f32::from(font.face.units_per_em())
            })
        })
        .collect();
    let mut cid_font = pdf.cid_font(cid);
    cid_font
        .subtype(CidFontType::Type2)
        .base_font(base)
        .system_info(system)
        .font_descriptor(descriptor)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    cid_font.widths().consecutive(0, widths);
    cid_font.finish();

    let bbox = font.face.global_bounding_box();
    pdf.font_descriptor(descriptor)
        .name(base)
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(
            font.scale(bbox.x_min),
            font.scale(bbox.y_min),
            font.scale(bbox.x_max),
            font.scale(bbox.y_max),
        ))
        .italic_angle(0.0)
        .ascent(font.scale(font.face.ascender()))
        .descent(font.scale(font.face.descender()))
        .cap_height(font.scale(font.face.capital_height().unwrap_or(font.face.ascender())))
        .stem_v(80.0)
        .font_file2(file);

    let subset = subsetter::subset(font.data, 0, &font.remapper)
        .map_err(|e| PdfError::Font(e.to_string()))?;
    let compressed = deflate(&subset)?;
    pdf.stream(file, &compressed)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), subset.len() as i32);

    let mut unicode = pdf_writer::types::UnicodeCmap::new(Name(b"Custom"), system);
    for (gid, (c, _)) in &font.used {
        unicode.pair(*gid, *c);
    }
    let cmap_data = unicode.finish();
    pdf.cmap(cmap, &cmap_data)
        .name(Name(b"Custom"))
        .system_info(system);
    Ok(())
}

fn deflate(data: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data)?;
    encoder.finish()
}

/// Greedy word wrap by measured width; a word wider than the line is broken between
/// characters. Tabs become spaces; an empty paragraph stays one empty line.
fn wrap(font: &Font, text: &str, size: f32, width: f32) -> Vec<String> {
    let text = text.replace('\t', "    ");
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if font.width(&candidate, size) <= width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        for c in word.chars() {
            line.push(c);
            if font.width(&line, size) > width && line.chars().count() > 1 {
                line.pop();
                lines.push(std::mem::take(&mut line));
                line.push(c);
            }
        }
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_long_text_and_breaks_long_words() {
        let font = Font::new(REGULAR, "X").unwrap();
        let lines = wrap(&font, &"žodis ".repeat(60), 10.0, 200.0);
        assert!(lines.len() > 3);
        assert!(lines.iter().all(|l| font.width(l, 10.0) <= 200.0));
        let lines = wrap(&font, &"Ą".repeat(200), 10.0, 100.0);
        assert!(lines.len() > 5, "{lines:?}");
    }

    #[test]
    fn lithuanian_letters_are_embedded_and_mapped_back() {
        let layout = Layout {
            title: "Konsultacijos išvada".into(),
            facts: vec![("Pacientas".into(), "Ąžuolaitė Šarūnė".into())],
            sections: vec![("Išvada".into(), "Čia ęėįšųūž ĄČĘĖĮŠŲŪŽ.\n".repeat(80))],
            signature: vec!["Gydytoja Žaneta Ūsienė".into()],
            ..Layout::default()
        };
        let pdf = render(&layout).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/FontFile2"));
        assert!(text.contains("/ToUnicode"));
        // Eighty paragraphs do not fit on one page.
        assert!(
            text.contains("/Count 2") || text.contains("/Count 3"),
            "pages"
        );
    }
}
