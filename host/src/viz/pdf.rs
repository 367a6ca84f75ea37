//! `-e netviz`: the charts on one PDF page (tcpflow 1.6's report.pdf), from the same SVG the
//! page shows, converted by svg2pdf. Text needs a font: the system's (fontconfig's folders);
//! without any, the charts are drawn and their text is left out, with a warning.

use svg2pdf::usvg;

use super::charts::{Chart, HEIGHT, WIDTH};
use crate::report::xml_escape;

const COLUMNS: u32 = 2;
const HEADER: u32 = 60;

/// The charts composed into one SVG, two to a row, under a title line.
pub fn compose(charts: &[Chart], subtitle: &str) -> String {
    let rows = (charts.len() as u32).div_ceil(COLUMNS);
    let (w, h) = (WIDTH * COLUMNS, HEADER + rows * HEIGHT);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\
         <text x=\"12\" y=\"28\" font-family=\"sans-serif\" font-size=\"22\">tcpflow: capture report</text>\
         <text x=\"12\" y=\"50\" font-family=\"sans-serif\" font-size=\"13\">{}</text>",
        xml_escape(subtitle)
    );
    for (i, c) in charts.iter().enumerate() {
        let (x, y) = (
            (i as u32 % COLUMNS) * WIDTH,
            HEADER + (i as u32 / COLUMNS) * HEIGHT,
        );
        let inner = c.svg.find("<svg").map_or(c.svg.as_str(), |k| &c.svg[k..]);
        s.push_str(&format!("<g transform=\"translate({x},{y})\">{inner}</g>"));
    }
    s.push_str("</svg>");
    s
}

/// The PDF bytes, and a warning when no font was found for the text.
pub fn to_pdf(svg: &str) -> Result<(Vec<u8>, Option<String>), String> {
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    // Plotters asks for the generic "sans-serif"; fontdb maps it to Arial, which Debian has
    // not: take a sans face that is there, else any face.
    let families: Vec<String> = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(n, _)| n.clone()))
        .collect();
    let pick = [
        "DejaVu Sans",
        "Liberation Sans",
        "Noto Sans",
        "FreeSans",
        "Arial",
    ]
    .iter()
    .map(|s| s.to_string())
    .find(|want| families.contains(want))
    .or_else(|| families.first().cloned());
    let warning = match &pick {
        Some(f) => {
            db.set_sans_serif_family(f.clone());
            opt.font_family = f.clone();
            None
        }
        None => {
            Some("no font found for report.pdf's text: the charts are drawn without it".to_string())
        }
    };
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| format!("report.pdf: {e}"))?;
    let pdf = svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        // 2 px a point: a page about A4 wide.
        svg2pdf::PageOptions { dpi: 144.0 },
    )
    .map_err(|e| format!("report.pdf: {e}"))?;
    Ok((pdf, warning))
}
