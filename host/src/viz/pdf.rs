//! `-e netviz`: the charts on one PDF page (tcpflow 1.6's report.pdf), drawn by the same
//! chart code as the page's SVG through a plotters backend that writes PDF drawing
//! operators (pdf-writer). Text is in PDF's built-in Helvetica: no font file is read or
//! embedded, so the PDF looks the same on every machine and costs no font stack.

use std::fmt;

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontTransform,
};

use super::charts::{draw_on, each_draw, COUNT, HEIGHT, WIDTH};
use super::collect::{Tables, Timeline};

const COLUMNS: u32 = 2;
const HEADER: u32 = 60;
/// Points per backend pixel: the page is about A4 wide (1520 px -> 760 pt).
const SCALE: f32 = 0.5;

/// Never returned: writing operators into memory cannot fail.
#[derive(Debug)]
pub struct NoError;

impl fmt::Display for NoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no error")
    }
}

impl std::error::Error for NoError {}

/// A plotters backend that draws into one PDF page's content stream.
pub struct PdfBackend<'a> {
    size: (u32, u32),
    content: &'a mut Content,
}

/// Over white: PDF's plain operators have no alpha (that needs graphics states), and every
/// translucent colour plotters uses here is over a white background.
fn rgb(c: BackendColor) -> (f32, f32, f32) {
    let a = c.alpha.clamp(0.0, 1.0) as f32;
    let ch = |v: u8| (f32::from(v) * a + 255.0 * (1.0 - a)) / 255.0;
    (ch(c.rgb.0), ch(c.rgb.1), ch(c.rgb.2))
}

impl<'a> PdfBackend<'a> {
    pub fn new(size: (u32, u32), content: &'a mut Content) -> PdfBackend<'a> {
        PdfBackend { size, content }
    }

    fn pt(&self, (x, y): BackendCoord) -> (f32, f32) {
        (x as f32 * SCALE, (self.size.1 as i32 - y) as f32 * SCALE)
    }

    /// Sets the stroke; false when the style is invisible.
    fn stroke<S: BackendStyle>(&mut self, s: &S) -> bool {
        let c = s.color();
        if c.alpha <= 0.0 {
            return false;
        }
        let (r, g, b) = rgb(c);
        self.content.set_stroke_rgb(r, g, b);
        self.content
            .set_line_width(s.stroke_width().max(1) as f32 * SCALE);
        true
    }

    fn fill<S: BackendStyle>(&mut self, s: &S) -> bool {
        let c = s.color();
        if c.alpha <= 0.0 {
            return false;
        }
        let (r, g, b) = rgb(c);
        self.content.set_fill_rgb(r, g, b);
        true
    }
}

/// The document: one page of `size` backend pixels drawn by `content`, with Helvetica as F1.
fn document(size: (u32, u32), content: Content) -> Vec<u8> {
    {
        let (catalog, pages, page, content_ref, font) = (
            Ref::new(1),
            Ref::new(2),
            Ref::new(3),
            Ref::new(4),
            Ref::new(5),
        );
        let mut pdf = Pdf::new();
        pdf.catalog(catalog).pages(pages);
        pdf.pages(pages).kids([page]).count(1);
        let mut p = pdf.page(page);
        p.media_box(Rect::new(
            0.0,
            0.0,
            size.0 as f32 * SCALE,
            size.1 as f32 * SCALE,
        ));
        p.parent(pages);
        p.contents(content_ref);
        p.resources().fonts().pair(Name(b"F1"), font);
        p.finish();
        pdf.type1_font(font)
            .base_font(Name(b"Helvetica"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.stream(content_ref, &content.finish());
        pdf.finish()
    }
}

type Res = Result<(), DrawingErrorKind<NoError>>;

impl DrawingBackend for PdfBackend<'_> {
    type ErrorType = NoError;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }

    fn ensure_prepared(&mut self) -> Res {
        Ok(())
    }

    fn present(&mut self) -> Res {
        Ok(())
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Res {
        if self.fill(&color) {
            let (x, y) = self.pt(point);
            self.content.rect(x, y - SCALE, SCALE, SCALE).fill_nonzero();
        }
        Ok(())
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Res {
        if self.stroke(style) {
            let ((x0, y0), (x1, y1)) = (self.pt(from), self.pt(to));
            self.content.move_to(x0, y0).line_to(x1, y1).stroke();
        }
        Ok(())
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        ul: BackendCoord,
        br: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Res {
        let ((x0, y0), (x1, y1)) = (self.pt(ul), self.pt(br));
        let (x, y, w, h) = (x0.min(x1), y0.min(y1), (x1 - x0).abs(), (y1 - y0).abs());
        if fill {
            if self.fill(style) {
                self.content.rect(x, y, w, h).fill_nonzero();
            }
        } else if self.stroke(style) {
            self.content.rect(x, y, w, h).stroke();
        }
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Res {
        if !self.stroke(style) {
            return Ok(());
        }
        let mut any = false;
        for (i, p) in path.into_iter().enumerate() {
            let (x, y) = self.pt(p);
            if i == 0 {
                self.content.move_to(x, y);
            } else {
                self.content.line_to(x, y);
            }
            any = true;
        }
        if any {
            self.content.stroke();
        }
        Ok(())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Res {
        if !self.fill(style) {
            return Ok(());
        }
        let mut n = 0;
        for p in vert {
            let (x, y) = self.pt(p);
            if n == 0 {
                self.content.move_to(x, y);
            } else {
                self.content.line_to(x, y);
            }
            n += 1;
        }
        if n > 0 {
            self.content.close_path().fill_nonzero();
        }
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Res {
        let on = if fill {
            self.fill(style)
        } else {
            self.stroke(style)
        };
        if !on {
            return Ok(());
        }
        // Four cubic arcs (k: the usual control distance for a quarter circle).
        let (cx, cy) = self.pt(center);
        let r = radius as f32 * SCALE;
        let k = 0.552_284_8 * r;
        let c = &mut self.content;
        c.move_to(cx + r, cy);
        c.cubic_to(cx + r, cy + k, cx + k, cy + r, cx, cy + r);
        c.cubic_to(cx - k, cy + r, cx - r, cy + k, cx - r, cy);
        c.cubic_to(cx - r, cy - k, cx - k, cy - r, cx, cy - r);
        c.cubic_to(cx + k, cy - r, cx + r, cy - k, cx + r, cy);
        c.close_path();
        if fill {
            c.fill_nonzero();
        } else {
            c.stroke();
        }
        Ok(())
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Res {
        if !self.fill(&style.color()) {
            return Ok(());
        }
        // The size the SVG backend gives the same text.
        let size = (style.size() / 1.24) as f32;
        // Helvetica is about half an em wide per character on average.
        let width = text.chars().count() as f32 * size * 0.5;
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => size * 0.76,
            VPos::Center => size * 0.35,
            VPos::Bottom => -size * 0.25,
        };
        // Along the text and towards the glyphs' feet, in backend pixels (y down).
        let (dir, feet) = match style.transform() {
            FontTransform::Rotate90 => ((0.0, 1.0), (-1.0, 0.0)),
            FontTransform::Rotate180 => ((-1.0, 0.0), (0.0, -1.0)),
            FontTransform::Rotate270 => ((0.0, -1.0), (1.0, 0.0)),
            _ => ((1.0, 0.0), (0.0, 1.0)),
        };
        let px = pos.0 as f32 + dir.0 * dx + feet.0 * dy;
        let py = pos.1 as f32 + dir.1 * dx + feet.1 * dy;
        let (x, y) = (px * SCALE, (self.size.1 as f32 - py) * SCALE);
        // WinAnsi: the ASCII the charts use; anything else shows as '?'.
        let bytes: Vec<u8> = text
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() {
                    c as u8
                } else {
                    b'?'
                }
            })
            .collect();
        let c = &mut self.content;
        c.begin_text();
        c.set_font(Name(b"F1"), size * SCALE);
        // Text x axis along `dir`, up opposite to `feet` (PDF's y points up).
        c.set_text_matrix([dir.0, -dir.1, -feet.0, feet.1, x, y]);
        c.show(Str(&bytes));
        c.end_text();
        Ok(())
    }
}

/// The report's charts on one page under a title line, two to a row.
pub fn page(
    tl: &Timeline,
    t: &Tables,
    addr_label: impl Fn(tcpflow_core::Addr) -> String,
    subtitle: &str,
) -> Result<Vec<u8>, String> {
    let rows = (COUNT as u32).div_ceil(COLUMNS);
    let size = (WIDTH * COLUMNS, HEADER + rows * HEIGHT);
    let mut content = Content::new();
    {
        let root = PdfBackend::new(size, &mut content).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<NoError>| format!("drawing report.pdf: {e:?}");
        root.fill(&WHITE).map_err(err)?;
        let (head, body) = root.split_vertically(HEADER);
        head.draw_text(
            "tcpflow: capture report",
            &("sans-serif", 28).into_font().color(&BLACK),
            (12, 8),
        )
        .map_err(err)?;
        head.draw_text(
            subtitle,
            &("sans-serif", 16).into_font().color(&BLACK),
            (12, 38),
        )
        .map_err(err)?;
        let areas = body.split_evenly((rows as usize, COLUMNS as usize));
        let mut next = areas.iter();
        each_draw(tl, t, addr_label, |_, title, d| match next.next() {
            Some(area) => draw_on(area, title, &d),
            None => Err("report.pdf: more charts than places".into()),
        })?;
        root.present().map_err(err)?;
    }
    Ok(document(size, content))
}
