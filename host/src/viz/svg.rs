//! The page's charts as SVG: a plotters backend that appends SVG elements to a string.
//!
//! It writes what plotters' own SVG backend (plotters-svg 0.3.7) writes for the elements the
//! charts use, in the same shapes and attribute order (`<rect>`, `<line>`, `<polyline>`,
//! `<polygon>`, `<circle>`, `<text>` in a generic font family), so the charts look the same;
//! but numbers go through an integer formatter rather than `format!`, an opacity is written
//! only when it is not 1, and only strings (text content, the font family) are escaped,
//! after one look at whether they need it. plotters-svg formatted and escaped every
//! attribute (a polyline's points about 1,000 instructions each; a step line has hundreds).

use std::convert::Infallible;

use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontStyle, FontTransform,
};

use crate::report::push_xml_escaped;
use crate::timefmt::push_num;

type Res = Result<(), DrawingErrorKind<Infallible>>;

/// A plotters backend appending one `<svg>` document to a string (closed by `present`, or
/// when dropped).
pub struct SvgBackend<'a> {
    out: &'a mut String,
    size: (u32, u32),
    closed: bool,
    /// The last font size written and its text (plotters-svg writes sizes as `f64`s; the
    /// charts use a few, in runs: formatted again only when the size changes).
    font_size: Option<(f64, String)>,
}

/// Appends a signed integer.
fn push_int(s: &mut String, n: i32) {
    if n < 0 {
        s.push('-');
    }
    push_num(s, u64::from(n.unsigned_abs()), 0);
}

/// Appends `#RRGGBB`.
fn push_color(s: &mut String, c: BackendColor) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let (r, g, b) = c.rgb;
    let mut buf = [b'#'; 7];
    for (i, v) in [r, g, b].into_iter().enumerate() {
        buf[1 + 2 * i] = HEX[usize::from(v >> 4)];
        buf[2 + 2 * i] = HEX[usize::from(v & 15)];
    }
    // SAFETY: ASCII only.
    s.push_str(unsafe { std::str::from_utf8_unchecked(&buf) });
}

/// Appends ` opacity="a"` unless `a` is 1 (SVG's default), as plotters-svg writes it (`{}` of
/// the f64): three decimals at most, without `format!`, for the alphas the charts use.
fn push_opacity(s: &mut String, a: f64) {
    if a == 1.0 {
        return;
    }
    s.push_str(" opacity=\"");
    let m = (a * 1000.0).round();
    if (0.0..=1000.0).contains(&m) && m / 1000.0 == a {
        let m = m as u64;
        push_num(s, m / 1000, 0);
        let frac = m % 1000;
        if frac != 0 {
            s.push('.');
            let mut f = frac;
            let mut width = 3;
            while f % 10 == 0 {
                f /= 10;
                width -= 1;
            }
            push_num(s, f, width);
        }
    } else {
        s.push_str(&a.to_string());
    }
    s.push('"');
}

impl<'a> SvgBackend<'a> {
    /// Opens an `<svg>` of `size` at the end of `out`.
    pub fn with_string(out: &'a mut String, size: (u32, u32)) -> SvgBackend<'a> {
        out.push_str("<svg width=\"");
        push_num(out, u64::from(size.0), 0);
        out.push_str("\" height=\"");
        push_num(out, u64::from(size.1), 0);
        out.push_str("\" viewBox=\"0 0 ");
        push_num(out, u64::from(size.0), 0);
        out.push(' ');
        push_num(out, u64::from(size.1), 0);
        out.push_str("\" xmlns=\"http://www.w3.org/2000/svg\">\n");
        SvgBackend {
            out,
            size,
            closed: false,
            font_size: None,
        }
    }

    /// ` name="n"`, given ` name="`.
    fn int_attr(&mut self, prefix: &str, n: i32) {
        self.out.push_str(prefix);
        push_int(self.out, n);
        self.out.push('"');
    }

    /// ` name="#RRGGBB"`, given ` name="`.
    fn color_attr(&mut self, prefix: &str, c: BackendColor) {
        self.out.push_str(prefix);
        push_color(self.out, c);
        self.out.push('"');
    }

    /// ` opacity=.. stroke="#RRGGBB" stroke-width="w"`.
    fn stroke_attrs<S: BackendStyle>(&mut self, style: &S) {
        let c = style.color();
        push_opacity(self.out, c.alpha);
        self.color_attr(" stroke=\"", c);
        self.int_attr(" stroke-width=\"", style.stroke_width() as i32);
    }

    /// ` points="x,y x,y "` (plotters-svg's trailing space kept).
    fn points_attr<I: IntoIterator<Item = BackendCoord>>(&mut self, points: I) {
        self.out.push_str(" points=\"");
        for (x, y) in points {
            push_int(self.out, x);
            self.out.push(',');
            push_int(self.out, y);
            self.out.push(' ');
        }
        self.out.push('"');
    }

    /// ` fill="#RRGGBB" stroke="none"`, or ` fill="none" stroke="#RRGGBB"` for an outline.
    fn paint_attrs(&mut self, c: BackendColor, fill: bool) {
        if fill {
            self.color_attr(" fill=\"", c);
            self.out.push_str(" stroke=\"none\"");
        } else {
            self.out.push_str(" fill=\"none\"");
            self.color_attr(" stroke=\"", c);
        }
    }

    fn font_size(&mut self, size: f64) {
        let cached = matches!(&self.font_size, Some((s, _)) if *s == size);
        if !cached {
            self.font_size = Some((size, (size / 1.24).to_string()));
        }
        if let Some((_, text)) = &self.font_size {
            self.out.push_str(" font-size=\"");
            self.out.push_str(text);
            self.out.push('"');
        }
    }
}

impl Drop for SvgBackend<'_> {
    fn drop(&mut self) {
        let _ = self.present();
    }
}

impl DrawingBackend for SvgBackend<'_> {
    type ErrorType = Infallible;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }

    fn ensure_prepared(&mut self) -> Res {
        Ok(())
    }

    fn present(&mut self) -> Res {
        if !self.closed {
            self.out.push_str("</svg>\n");
            self.closed = true;
        }
        Ok(())
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Res {
        if color.alpha == 0.0 {
            return Ok(());
        }
        self.out.push_str("<rect");
        self.int_attr(" x=\"", point.0);
        self.int_attr(" y=\"", point.1);
        self.out
            .push_str(" width=\"1\" height=\"1\" stroke=\"none\"");
        push_opacity(self.out, color.alpha);
        self.color_attr(" fill=\"", color);
        self.out.push_str("/>\n");
        Ok(())
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Res {
        if style.color().alpha == 0.0 {
            return Ok(());
        }
        self.out.push_str("<line");
        self.stroke_attrs(style);
        self.int_attr(" x1=\"", from.0);
        self.int_attr(" y1=\"", from.1);
        self.int_attr(" x2=\"", to.0);
        self.int_attr(" y2=\"", to.1);
        self.out.push_str("/>\n");
        Ok(())
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        ul: BackendCoord,
        br: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Res {
        let c = style.color();
        if c.alpha == 0.0 {
            return Ok(());
        }
        self.out.push_str("<rect");
        self.int_attr(" x=\"", ul.0);
        self.int_attr(" y=\"", ul.1);
        self.int_attr(" width=\"", br.0 - ul.0);
        self.int_attr(" height=\"", br.1 - ul.1);
        push_opacity(self.out, c.alpha);
        self.paint_attrs(c, fill);
        self.out.push_str("/>\n");
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Res {
        if style.color().alpha == 0.0 {
            return Ok(());
        }
        self.out.push_str("<polyline fill=\"none\"");
        self.stroke_attrs(style);
        self.points_attr(path);
        self.out.push_str("/>\n");
        Ok(())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Res {
        let c = style.color();
        if c.alpha == 0.0 {
            return Ok(());
        }
        self.out.push_str("<polygon");
        push_opacity(self.out, c.alpha);
        self.color_attr(" fill=\"", c);
        self.points_attr(vert);
        self.out.push_str("/>\n");
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Res {
        let c = style.color();
        if c.alpha == 0.0 {
            return Ok(());
        }
        self.out.push_str("<circle");
        self.int_attr(" cx=\"", center.0);
        self.int_attr(" cy=\"", center.1);
        self.out.push_str(" r=\"");
        push_num(self.out, u64::from(radius), 0);
        self.out.push('"');
        push_opacity(self.out, c.alpha);
        self.paint_attrs(c, fill);
        self.int_attr(" stroke-width=\"", style.stroke_width() as i32);
        self.out.push_str("/>\n");
        Ok(())
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Res {
        let c = style.color();
        if c.alpha == 0.0 {
            return Ok(());
        }
        let anchor = style.anchor();
        self.out.push_str("<text");
        self.int_attr(" x=\"", pos.0);
        self.int_attr(" y=\"", pos.1);
        self.out.push_str(match anchor.v_pos {
            VPos::Top => " dy=\"0.76em\"",
            VPos::Center => " dy=\"0.5ex\"",
            VPos::Bottom => " dy=\"-0.5ex\"",
        });
        self.out.push_str(match anchor.h_pos {
            HPos::Left => " text-anchor=\"start\"",
            HPos::Right => " text-anchor=\"end\"",
            HPos::Center => " text-anchor=\"middle\"",
        });
        self.out.push_str(" font-family=\"");
        push_xml_escaped(self.out, style.family().as_str());
        self.out.push('"');
        self.font_size(style.size());
        push_opacity(self.out, c.alpha);
        self.color_attr(" fill=\"", c);
        match style.style() {
            FontStyle::Normal => {}
            FontStyle::Bold => self.out.push_str(" font-weight=\"bold\""),
            other => {
                self.out.push_str(" font-style=\"");
                self.out.push_str(other.as_str());
                self.out.push('"');
            }
        }
        let degrees = match style.transform() {
            FontTransform::Rotate90 => Some("90"),
            FontTransform::Rotate180 => Some("180"),
            FontTransform::Rotate270 => Some("270"),
            _ => None,
        };
        if let Some(d) = degrees {
            self.out.push_str(" transform=\"rotate(");
            self.out.push_str(d);
            self.out.push_str(", ");
            push_int(self.out, pos.0);
            self.out.push_str(", ");
            push_int(self.out, pos.1);
            self.out.push_str(")\"");
        }
        self.out.push_str(">\n");
        push_xml_escaped(self.out, text);
        self.out.push_str("\n</text>\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{push_color, push_int, push_opacity, BackendColor, SvgBackend};
    use plotters::prelude::*;

    /// Every `<tag ...>` has its `</tag>` (or is `<tag .../>`), properly nested.
    fn balanced(svg: &str) -> Result<usize, String> {
        let mut stack = Vec::new();
        let mut n = 0;
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let end = rest[i..].find('>').ok_or("a tag is not closed")? + i;
            let tag = &rest[i + 1..end];
            if tag.contains('<') {
                return Err(format!("'<' inside a tag: {tag}"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
            }
            n += 1;
            rest = &rest[end + 1..];
        }
        if stack.is_empty() {
            Ok(n)
        } else {
            Err(format!("left open: {stack:?}"))
        }
    }

    #[test]
    fn numbers_colors_and_opacity() {
        let mut s = String::new();
        push_int(&mut s, -12);
        s.push(' ');
        push_int(&mut s, 0);
        s.push(' ');
        push_int(&mut s, i32::MIN);
        push_color(
            &mut s,
            BackendColor {
                alpha: 1.0,
                rgb: (255, 127, 14),
            },
        );
        push_opacity(&mut s, 1.0);
        push_opacity(&mut s, 0.85);
        push_opacity(&mut s, 0.4);
        push_opacity(&mut s, 0.0);
        push_opacity(&mut s, 0.123_456);
        assert_eq!(
            s,
            "-12 0 -2147483648#FF7F0E opacity=\"0.85\" opacity=\"0.4\" opacity=\"0\" \
             opacity=\"0.123456\""
        );
    }

    #[test]
    fn a_chart() {
        let data = [(0.0, 0.0), (5.0, 10.0), (10.0, 5.0)];
        let mut s = String::new();
        let expected: Vec<(i32, i32)>;
        {
            let root = SvgBackend::with_string(&mut s, (400, 200)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            let mut chart = ChartBuilder::on(&root)
                .caption("a <b> & c", ("sans-serif", 16))
                .margin(0)
                .y_label_area_size(40)
                .x_label_area_size(20)
                .build_cartesian_2d(0f64..10.0, 0f64..10.0)
                .unwrap();
            chart
                .configure_mesh()
                .max_light_lines(0)
                .y_desc("rotated")
                .draw()
                .unwrap();
            chart
                .draw_series(LineSeries::new(
                    data,
                    RGBColor(31, 119, 180).stroke_width(2),
                ))
                .unwrap()
                .label("series")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()
                .unwrap();
            expected = data.iter().map(|p| chart.backend_coord(p)).collect();
            root.present().unwrap();
        }
        let n = balanced(&s).unwrap_or_else(|e| panic!("{e}\n{s}"));
        assert!(n > 10, "{s}");
        assert!(s.starts_with(
            "<svg width=\"400\" height=\"200\" viewBox=\"0 0 400 200\" \
             xmlns=\"http://www.w3.org/2000/svg\">\n"
        ));
        assert!(s.ends_with("</svg>\n"));
        assert_eq!(s.matches("</svg>").count(), 1, "closed once");
        // The series' points where plotters maps them: the plot area is (40, 22) to
        // (400, 180) (the caption above it, the x labels below).
        assert_eq!(expected, [(40, 179), (219, 22), (399, 101)]);
        let line = s
            .lines()
            .find(|l| l.contains("stroke=\"#1F77B4\""))
            .unwrap_or_else(|| panic!("no series line\n{s}"));
        let want = expected.iter().fold(String::new(), |mut w, (x, y)| {
            w.push_str(&format!("{x},{y} "));
            w
        });
        assert_eq!(
            line,
            format!(
                "<polyline fill=\"none\" stroke=\"#1F77B4\" stroke-width=\"2\" points=\"{want}\"/>"
            )
        );
        // Text content escaped, attributes as plotters-svg writes them.
        assert!(s.contains(">\na &lt;b&gt; &amp; c\n</text>"), "{s}");
        assert!(!s.contains("<b>"));
        assert!(
            s.contains("font-family=\"sans-serif\" font-size=\"12.903225806451614\""),
            "{s}"
        );
        assert!(s.contains(" transform=\"rotate(270, "), "{s}");
        assert!(
            s.contains("opacity=\"0.85\" fill=\"#FFFFFF\" stroke=\"none\"/>"),
            "{s}"
        );
        assert!(
            s.contains("opacity=\"0.4\" fill=\"none\" stroke=\"#000000\"/>"),
            "{s}"
        );
        assert!(!s.contains("opacity=\"1\""));
    }
}
