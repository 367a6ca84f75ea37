//! Body file names as tcpflow 1.6 writes them: `<flow file>-HTTPBODY-NNN` plus an extension
//! from the Content-Type, and the header values the report keeps (never used as paths).

/// The extension for a Content-Type (its media type, parameters ignored), with its dot;
/// empty for types without one.
pub fn extension(content_type: &str) -> &'static str {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match t.as_str() {
        "text/html" | "application/xhtml+xml" => ".html",
        "text/plain" => ".txt",
        "text/css" => ".css",
        "text/xml" | "application/xml" => ".xml",
        "text/javascript" | "application/javascript" | "application/x-javascript" => ".js",
        "application/json" => ".json",
        "image/png" => ".png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => ".jpg",
        "image/gif" => ".gif",
        "image/x-icon" | "image/vnd.microsoft.icon" => ".ico",
        "image/svg+xml" => ".svg",
        "image/webp" => ".webp",
        "image/bmp" => ".bmp",
        "application/pdf" => ".pdf",
        "application/zip" => ".zip",
        "application/gzip" | "application/x-gzip" => ".gz",
        "application/x-shockwave-flash" => ".swf",
        "application/octet-stream" => ".bin",
        "application/x-msdownload" | "application/x-dosexec" => ".exe",
        "audio/mpeg" => ".mp3",
        "video/mp4" => ".mp4",
        _ => "",
    }
}

/// `<flow file>-HTTPBODY-NNN<ext>`: numbered from 1 per flow file, in message order.
pub fn body_name(flow_file: &str, index: u32, content_type: &str) -> String {
    format!("{flow_file}-HTTPBODY-{index:03}{}", extension(content_type))
}

/// The file name a Content-Disposition offers (`filename*=` preferred, then `filename=`),
/// as text for the report; at most 255 bytes are kept.
pub fn disposition_filename(v: &str) -> Option<String> {
    let mut plain = None;
    let mut ext = None;
    for part in v.split(';').skip(1) {
        let Some((k, val)) = part.split_once('=') else {
            continue;
        };
        let val = val.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                // charset'lang'percent-encoded
                let enc = val.splitn(3, '\'').nth(2).unwrap_or(val);
                ext = Some(percent_decode(enc));
            }
            "filename" => plain = Some(val.trim_matches('"').to_string()),
            _ => {}
        }
    }
    let mut n = ext.or(plain).filter(|s| !s.is_empty())?;
    if n.len() > 255 {
        let mut cut = 255;
        while !n.is_char_boundary(cut) {
            cut -= 1;
        }
        n.truncate(cut);
    }
    Some(n)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_tcpflow() {
        assert_eq!(
            body_name("a-b", 1, "text/html; charset=utf-8"),
            "a-b-HTTPBODY-001.html"
        );
        assert_eq!(body_name("a-b", 12, "IMAGE/PNG"), "a-b-HTTPBODY-012.png");
        assert_eq!(body_name("a-b", 1000, "x/unknown"), "a-b-HTTPBODY-1000");
        assert_eq!(body_name("a-b", 2, "text/plain"), "a-b-HTTPBODY-002.txt");
    }

    #[test]
    fn disposition() {
        assert_eq!(
            disposition_filename("attachment; filename=\"../../etc/passwd\"").as_deref(),
            Some("../../etc/passwd")
        );
        assert_eq!(
            disposition_filename("attachment; filename=a.txt; filename*=UTF-8''%E2%82%AC.txt")
                .as_deref(),
            Some("\u{20ac}.txt")
        );
        assert_eq!(disposition_filename("inline"), None);
        assert_eq!(
            disposition_filename("attachment; filename*=%"),
            Some("%".into())
        );
    }
}
