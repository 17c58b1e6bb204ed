//! The start of a `multipart/form-data` body (RFC 7578): the fields a browser form sends before
//! its `file` part, read as s3s reads them, and the same start written back with other values.
//! The file's bytes are never part of this: they follow, untouched.

/// One field before the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name as sent (S3 compares names case-insensitively).
    pub name: String,
    pub value: String,
    /// The part's header lines, written back as they came.
    pub headers: Vec<u8>,
}

/// The fields before the file, and the file part's header.
#[derive(Debug, PartialEq, Eq)]
pub struct Prefix {
    pub fields: Vec<Field>,
    /// The `filename` of the file part, when it has one.
    pub filename: Option<String>,
    pub file_headers: Vec<u8>,
    /// Bytes from the start of the body to the first byte of the file.
    pub len: usize,
}

/// What the bytes read so far hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Everything up to the file's content.
    Complete(Prefix),
    /// A start that needs more bytes.
    Partial,
    /// Not a form this module can read (s3s will say what is wrong with it).
    Unreadable,
}

/// The boundary of a `multipart/form-data` Content-Type (quoted or not).
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    if !params
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    params.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim().eq_ignore_ascii_case("boundary").then(|| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value)
                .to_owned()
        })
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Reads the start of a form body up to its file part. The first delimiter may follow one
/// empty line, as s3s allows.
pub fn scan(buf: &[u8], boundary: &str) -> Scan {
    let first = format!("--{boundary}\r\n");
    let start = usize::from(buf.starts_with(b"\r\n")) * 2;
    let Some(head) = buf.get(start..start + first.len()) else {
        let seen = &buf[start.min(buf.len())..];
        let possible = first.as_bytes().starts_with(seen) || b"\r\n".starts_with(buf);
        return if possible {
            Scan::Partial
        } else {
            Scan::Unreadable
        };
    };
    if head != first.as_bytes() {
        return Scan::Unreadable;
    }
    let delimiter = format!("\r\n--{boundary}\r\n");
    let mut pos = start + first.len();
    let mut fields = Vec::new();
    loop {
        let Some(end) = find(buf, b"\r\n\r\n", pos) else {
            return Scan::Partial;
        };
        let headers = &buf[pos..end];
        let Some((name, filename)) = disposition(headers) else {
            return Scan::Unreadable;
        };
        let content = end + 4;
        if name.eq_ignore_ascii_case("file") {
            return Scan::Complete(Prefix {
                fields,
                filename,
                file_headers: headers.to_vec(),
                len: content,
            });
        }
        let Some(value_end) = find(buf, delimiter.as_bytes(), content) else {
            return Scan::Partial;
        };
        let Ok(value) = std::str::from_utf8(&buf[content..value_end]) else {
            return Scan::Unreadable;
        };
        fields.push(Field {
            name,
            value: value.to_owned(),
            headers: headers.to_vec(),
        });
        pos = value_end + delimiter.len();
    }
}

/// The `name` and `filename` of a part's `Content-Disposition: form-data; name="…"` header.
fn disposition(headers: &[u8]) -> Option<(String, Option<String>)> {
    let headers = std::str::from_utf8(headers).ok()?;
    let value = headers.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(value.trim())
    })?;
    let (kind, mut rest) = value.split_once(';').unwrap_or((value, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    let (mut name, mut filename) = (None, None);
    // Quoted values may hold `;` (a file named `a;b.txt`), so parameters are read in turn.
    while !rest.trim().is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (v, after) = after.trim_start().strip_prefix('"')?.split_once('"')?;
        match key.trim() {
            "name" => name = Some(v.to_owned()),
            "filename" => filename = Some(v.to_owned()),
            _ => {}
        }
        rest = after.trim_start();
        rest = match rest.strip_prefix(';') {
            Some(more) => more,
            None if rest.is_empty() => rest,
            None => return None,
        };
    }
    Some((name.filter(|n| !n.is_empty())?, filename))
}

/// The start of a form body with these fields, up to the file's first byte.
pub fn write(fields: &[Field], file_headers: &[u8], boundary: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let parts = fields
        .iter()
        .map(|f| (f.headers.as_slice(), Some(f.value.as_bytes())))
        .chain([(file_headers, None)]);
    for (headers, value) in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(headers);
        out.extend_from_slice(b"\r\n\r\n");
        if let Some(value) = value {
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/${filename}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"Content-Type\"\r\n\r\ntext/plain\r\n--XyZ\r\ncontent-disposition: form-data; name=\"empty\"\r\n\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";

    fn field(name: &str, value: &str, headers: &str) -> Field {
        Field {
            name: name.into(),
            value: value.into(),
            headers: headers.as_bytes().to_vec(),
        }
    }

    #[test]
    fn boundaries_of_content_types() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("multipart/mixed; boundary=abc"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn fields_up_to_the_file() {
        let Scan::Complete(prefix) = scan(BODY.as_bytes(), "XyZ") else {
            panic!("complete");
        };
        assert_eq!(
            prefix.fields,
            [
                field(
                    "key",
                    "uploads/${filename}",
                    "Content-Disposition: form-data; name=\"key\""
                ),
                field(
                    "Content-Type",
                    "text/plain",
                    "Content-Disposition: form-data; name=\"Content-Type\""
                ),
                field(
                    "empty",
                    "",
                    "content-disposition: form-data; name=\"empty\""
                ),
            ]
        );
        assert_eq!(prefix.filename.as_deref(), Some("a.txt"));
        let odd_name = BODY.replace("filename=\"a.txt\"", "filename=\"a; b=c.txt\"");
        let Scan::Complete(odd) = scan(odd_name.as_bytes(), "XyZ") else {
            panic!("complete");
        };
        assert_eq!(odd.filename.as_deref(), Some("a; b=c.txt"));
        assert_eq!(&BODY[prefix.len..prefix.len + 5], "hello");
        let written = write(&prefix.fields, &prefix.file_headers, "XyZ");
        assert_eq!(written, BODY.as_bytes()[..prefix.len]);
        let Scan::Complete(after_empty_line) = scan(format!("\r\n{BODY}").as_bytes(), "XyZ") else {
            panic!("one empty line may come first");
        };
        assert_eq!(after_empty_line.fields, prefix.fields);
        assert_eq!(after_empty_line.len, prefix.len + 2);
    }

    #[test]
    fn every_cut_of_the_start_asks_for_more() {
        let Scan::Complete(prefix) = scan(BODY.as_bytes(), "XyZ") else {
            panic!("complete");
        };
        for cut in 0..prefix.len {
            assert_eq!(scan(&BODY.as_bytes()[..cut], "XyZ"), Scan::Partial, "{cut}");
        }
    }

    #[test]
    fn unreadable_forms() {
        let bodies: [&[u8]; 6] = [
            b"preamble\r\n--XyZ\r\n",
            b"--Other\r\n",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\nv\r\n--XyZ\r\n",
            b"--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--XyZ\r\n",
            b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ\r\n",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--XyZ\r\n",
        ];
        for body in bodies {
            assert_eq!(scan(body, "XyZ"), Scan::Unreadable, "{body:?}");
        }
    }
}
