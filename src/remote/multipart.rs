//! `multipart/related` bodies (RFC 2046 §5.1, RFC 2387), as DICOMweb servers send frames and
//! instances (DICOM PS3.18 §8.7.3): the boundary and parameters of a `Content-Type`, and the
//! parts of a body already read (its size bounded by the caller).
//!
//! Strict where a fault could mix up frames: every delimiter must be where the previous part's
//! `Content-Length` (when given) says, the closing delimiter must be there (else the body was
//! truncated), and part headers are bounded. Tolerant where servers differ: quoted or bare
//! parameter values, any letter case in names, transport padding after a delimiter, a preamble.

use std::ops::Range;

/// Most parts in one body.
pub const MAX_PARTS: usize = 4096;

/// Most bytes of one part's header block.
const MAX_HEADER_BYTES: usize = 16 << 10;

/// A media type and its parameters: `image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    /// Type and subtype, lower case (`multipart/related`).
    pub essence: String,
    /// Parameters in order, names lower case, values unquoted.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parse a `Content-Type` value; `None` when it is not `type/subtype` followed by
    /// well-formed parameters.
    pub fn parse(value: &str) -> Option<MediaType> {
        let (essence, mut rest) = match value.find(';') {
            Some(i) => (&value[..i], &value[i..]),
            None => (value, ""),
        };
        let essence = essence.trim().to_ascii_lowercase();
        let (kind, sub) = essence.split_once('/')?;
        let token =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !token(kind) || !token(sub) {
            return None;
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            rest = rest.strip_prefix(';')?.trim_start();
            if rest.is_empty() {
                break; // a trailing ';'
            }
            let eq = rest.find('=')?;
            let name = rest[..eq].trim().to_ascii_lowercase();
            if !token(&name) {
                return None;
            }
            rest = rest[eq + 1..].trim_start();
            let value = if let Some(quoted) = rest.strip_prefix('"') {
                let mut out = String::new();
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => out.push(chars.next()?.1),
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        c => out.push(c),
                    }
                }
                rest = &quoted[end? + 1..];
                out
            } else {
                let end = rest.find(';').unwrap_or(rest.len());
                let value = rest[..end].trim().to_string();
                rest = &rest[end..];
                value
            };
            params.push((name, value));
        }
        Some(MediaType { essence, params })
    }

    /// A parameter's value (name in any case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One part: its headers (names lower case) and where its body is in the whole body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Header fields in order.
    pub headers: Vec<(String, String)>,
    /// The part's body within the body given to [`parse`].
    pub body: Range<usize>,
}

impl Part {
    /// A header's value (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The parts of a multipart `body` delimited by `boundary` (from the `Content-Type`'s
/// `boundary` parameter). Errors say what is wrong, without quoting the body.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    if boundary.is_empty() || boundary.len() > 200 || !boundary.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("the multipart boundary is empty, too long or not plain text".into());
    }
    let dash = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    // The first delimiter may open the body (no CRLF before it) or follow a preamble.
    let mut at = if body.starts_with(dash.as_bytes()) {
        dash.len()
    } else {
        finder.find(body).ok_or("no multipart boundary in the reply")? + delimiter.len()
    };
    let mut parts = Vec::new();
    loop {
        // After a delimiter: "--" closes; otherwise transport padding, then CRLF.
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        while matches!(body.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err(if at >= body.len() {
                "the reply ends after a multipart boundary (truncated)".into()
            } else {
                "a multipart boundary is not followed by a line break".into()
            });
        }
        at += 2;
        if parts.len() == MAX_PARTS {
            return Err(format!("more than {MAX_PARTS} parts in one reply"));
        }
        // Headers up to an empty line (a part may have none).
        let (headers, body_start) = if body[at..].starts_with(b"\r\n") {
            (Vec::new(), at + 2)
        } else {
            let window = &body[at..body.len().min(at + MAX_HEADER_BYTES)];
            let Some(end) = memchr::memmem::find(window, b"\r\n\r\n") else {
                return Err(if body.len() - at < MAX_HEADER_BYTES {
                    "a part's headers are cut off (truncated reply)".into()
                } else {
                    format!("a part's headers are over {} KiB", MAX_HEADER_BYTES >> 10)
                });
            };
            (headers_of(&window[..end])?, at + end + 4)
        };
        let length = match headers.iter().find(|(n, _)| n == "content-length") {
            Some((_, v)) => Some(v.trim().parse::<usize>().map_err(|_| "a part's Content-Length is not a number")?),
            None => None,
        };
        let body_end = match length {
            Some(n) => {
                let end = body_start.checked_add(n).filter(|&e| e <= body.len());
                let end = end.ok_or("a part is shorter than its Content-Length (truncated reply)")?;
                if !body[end..].starts_with(delimiter.as_bytes()) {
                    return Err("a part is longer than its Content-Length".into());
                }
                end
            }
            None => {
                body_start
                    + finder.find(&body[body_start..]).ok_or("a part has no closing boundary (truncated reply)")?
            }
        };
        parts.push(Part { headers, body: body_start..body_end });
        at = body_end + delimiter.len();
    }
}

/// The body of the one part of a multipart reply, streamed: [`SinglePart::feed`] the reply's
/// bytes as they come; the part's body goes to the callback, never held whole. The same
/// checks as [`parse`]: a `Content-Length` is honoured exactly, the closing delimiter must come,
/// headers are bounded; a second part is an error.
pub struct SinglePart {
    delimiter: Vec<u8>,
    state: Stream,
    /// Bytes held back: headers not yet complete, the end of a body that may start a
    /// delimiter, or what follows the body.
    held: Vec<u8>,
}

enum Stream {
    /// Before the first delimiter's line break and the part's headers.
    Head,
    /// In the body: `Some(n)` bytes left by its Content-Length, or `None` (up to a delimiter).
    Body(Option<u64>),
    /// After the body: the closing delimiter is in `held`.
    Tail,
}

impl SinglePart {
    /// A stream of a body delimited by `boundary`.
    pub fn new(boundary: &str) -> Result<SinglePart, String> {
        if boundary.is_empty() || boundary.len() > 200 || !boundary.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err("the multipart boundary is empty, too long or not plain text".into());
        }
        Ok(SinglePart { delimiter: format!("\r\n--{boundary}").into_bytes(), state: Stream::Head, held: Vec::new() })
    }

    /// Take the next bytes of the reply; the part's body bytes among them go to `body`.
    pub fn feed(&mut self, bytes: &[u8], body: &mut impl FnMut(&[u8])) -> Result<(), String> {
        match self.state {
            Stream::Head => {
                self.held.extend_from_slice(bytes);
                // "--boundary", padding, CRLF, headers, CRLF CRLF: the delimiter without its CRLF.
                let dash = &self.delimiter[2..];
                let start = if self.held.starts_with(dash) {
                    Some(0)
                } else {
                    memchr::memmem::find(&self.held, &self.delimiter).map(|i| i + 2)
                };
                let Some(start) = start else {
                    if self.held.len() > MAX_HEADER_BYTES {
                        return Err("no multipart boundary in the reply".into());
                    }
                    return Ok(());
                };
                let after = start + dash.len();
                let Some(end) = memchr::memmem::find(&self.held[after..], b"\r\n\r\n") else {
                    if self.held.len() - after > MAX_HEADER_BYTES {
                        return Err(format!("a part's headers are over {} KiB", MAX_HEADER_BYTES >> 10));
                    }
                    return Ok(());
                };
                let head = &self.held[after..after + end];
                let line_end = memchr::memmem::find(head, b"\r\n").unwrap_or(head.len());
                if !head[..line_end].iter().all(|b| *b == b' ' || *b == b'\t') {
                    return Err("a multipart boundary is not followed by a line break".into());
                }
                let headers = if line_end == head.len() { Vec::new() } else { headers_of(&head[line_end + 2..])? };
                let length = match headers.iter().find(|(n, _)| n == "content-length") {
                    Some((_, v)) => {
                        Some(v.trim().parse::<u64>().map_err(|_| "a part's Content-Length is not a number")?)
                    }
                    None => None,
                };
                let rest = self.held.split_off(after + end + 4);
                self.held = Vec::new();
                self.state = Stream::Body(length);
                // The bytes after the headers go through the body state.
                self.feed_body(&rest, body)
            }
            Stream::Body(_) => self.feed_body(bytes, body),
            Stream::Tail => {
                // Only the closing delimiter matters; an epilogue after it is ignored.
                let closing = self.delimiter.len() + 2;
                let room = closing.saturating_sub(self.held.len()).min(bytes.len());
                self.held.extend_from_slice(&bytes[..room]);
                Ok(())
            }
        }
    }

    fn feed_body(&mut self, bytes: &[u8], body: &mut impl FnMut(&[u8])) -> Result<(), String> {
        match self.state {
            Stream::Body(Some(left)) => {
                let n = (left.min(bytes.len() as u64)) as usize;
                body(&bytes[..n]);
                if left == n as u64 {
                    self.state = Stream::Tail;
                    let closing = self.delimiter.len() + 2;
                    self.held = bytes[n..bytes.len().min(n + closing)].to_vec();
                } else {
                    self.state = Stream::Body(Some(left - n as u64));
                }
                Ok(())
            }
            Stream::Body(None) => {
                self.held.extend_from_slice(bytes);
                if let Some(i) = memchr::memmem::find(&self.held, &self.delimiter) {
                    body(&self.held[..i]);
                    self.held.drain(..i);
                    self.state = Stream::Tail;
                    return Ok(());
                }
                // Keep what could be the start of a delimiter.
                let keep = self.delimiter.len() - 1;
                if self.held.len() > keep {
                    let emit = self.held.len() - keep;
                    body(&self.held[..emit]);
                    self.held.drain(..emit);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The reply ended: an error unless the part was whole and closed.
    pub fn finish(self) -> Result<(), String> {
        match self.state {
            Stream::Head => Err("the reply ends before a part's body (truncated)".into()),
            Stream::Body(_) => Err("the reply ends inside a part (truncated)".into()),
            Stream::Tail => {
                let closing = [&self.delimiter[..], b"--"].concat();
                if !self.held.starts_with(&self.delimiter) {
                    Err("a part is longer than its Content-Length".into())
                } else if !self.held.starts_with(&closing) {
                    Err(if self.held.len() < closing.len() {
                        "the reply ends before its closing boundary (truncated)".into()
                    } else {
                        "more than one part in the reply".into()
                    })
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Header lines `Name: value` (CRLF-separated; folded lines refused).
fn headers_of(block: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(block).map_err(|_| "a part's headers are not text")?;
    text.split("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(':').ok_or("a part's header line has no ':'")?;
            if name.is_empty() || name.starts_with([' ', '\t']) || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err("a part's header name is not valid".to_string());
            }
            Ok((name.to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (headers, data) in parts {
            out.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        out
    }

    #[test]
    fn media_type_parameters_quoted_or_bare() {
        let t = MediaType::parse(
            r#"Multipart/Related; type="application/octet-stream; transfer-syntax=*"; Boundary="a b\"c""#,
        )
        .unwrap();
        assert_eq!(t.essence, "multipart/related");
        assert_eq!(t.param("type"), Some("application/octet-stream; transfer-syntax=*"));
        assert_eq!(t.param("boundary"), Some("a b\"c"));
        let t = MediaType::parse("image/jpeg;transfer-syntax=1.2.840.10008.1.2.4.50;").unwrap();
        assert_eq!(t.param("TRANSFER-SYNTAX"), Some("1.2.840.10008.1.2.4.50"));
        assert_eq!(MediaType::parse("nonsense"), None);
        assert_eq!(MediaType::parse("a/b; x=\"unterminated"), None);
        assert_eq!(MediaType::parse("a/b; novalue"), None);
    }

    #[test]
    fn parts_with_and_without_lengths() {
        let b = body(
            "XyZ-1",
            &[
                ("Content-Type: image/jpeg\r\nContent-Length: 5", b"\xff\xd8ab\xff"),
                ("content-type: image/jpeg", b"no length\r\n--XyZ but not a delimiter"),
            ],
        );
        let parts = parse(&b, "XyZ-1").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&b[parts[0].body.clone()], b"\xff\xd8ab\xff");
        assert_eq!(parts[0].header("CONTENT-TYPE"), Some("image/jpeg"));
        assert_eq!(&b[parts[1].body.clone()], b"no length\r\n--XyZ but not a delimiter");
    }

    #[test]
    fn unusual_boundaries_preamble_and_padding() {
        let boundary = "'()+_,-./:=? x";
        let mut b = b"a preamble to ignore\r\n".to_vec();
        b.extend_from_slice(format!("--{boundary}  \r\nContent-Type: a/b\r\n\r\nONE\r\n--{boundary}--").as_bytes());
        let parts = parse(&b, boundary).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(&b[parts[0].body.clone()], b"ONE");
        // A part with no headers at all.
        let b = "--q\r\n\r\nbare\r\n--q--".to_string();
        assert_eq!(&b.as_bytes()[parse(b.as_bytes(), "q").unwrap()[0].body.clone()], b"bare");
    }

    #[test]
    fn truncated_and_oversized_parts_are_errors() {
        let whole = body("B", &[("Content-Length: 4", b"abcd"), ("Content-Length: 2", b"xy")]);
        // Cut anywhere before the closing delimiter: an error, never a short frame.
        for cut in 1..whole.len() - 5 {
            let e = parse(&whole[..cut], "B");
            assert!(e.is_err(), "cut at {cut}: {e:?}");
        }
        // A part larger than announced.
        let big = body("B", &[("Content-Length: 3", b"abcd")]);
        assert!(parse(&big, "B").unwrap_err().contains("longer than its Content-Length"));
        // Smaller than announced.
        let small = body("B", &[("Content-Length: 9", b"abcd")]);
        assert!(parse(&small, "B").is_err());
        assert!(parse(b"no boundary here", "B").unwrap_err().contains("no multipart boundary"));
        let headers = format!("--B\r\n{}", "X: y\r\n".repeat(4000));
        assert!(parse(headers.as_bytes(), "B").unwrap_err().contains("headers"));
        assert!(parse(b"--B\r\nContent-Length: x\r\n\r\nab\r\n--B--", "B").unwrap_err().contains("not a number"));
    }

    /// The streamed body of `reply` fed `step` bytes at a time.
    fn streamed(reply: &[u8], boundary: &str, step: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut stream = SinglePart::new(boundary)?;
        for chunk in reply.chunks(step) {
            stream.feed(chunk, &mut |b| out.extend_from_slice(b))?;
        }
        stream.finish()?;
        Ok(out)
    }

    #[test]
    fn one_part_streams_in_any_chunking() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).chain(*b"\r\n--Bo").collect();
        let with_length = format!("Content-Type: application/dicom\r\nContent-Length: {}", data.len());
        for headers in [with_length.as_str(), "Content-Type: application/dicom"] {
            let reply = body("Bo:x", &[(headers, &data)]);
            for step in [1, 2, 7, 64, 4096, reply.len()] {
                let got = streamed(&reply, "Bo:x", step);
                assert!(got.as_ref() == Ok(&data), "{headers} by {step}: {:?}", got.map(|g| g.len()));
            }
            for cut in [10, 100, reply.len() / 2, reply.len() - 4] {
                assert!(streamed(&reply[..cut], "Bo:x", 13).is_err(), "cut at {cut}");
            }
        }
        let two = body("B", &[("Content-Length: 2", b"ab"), ("Content-Length: 2", b"cd")]);
        assert!(streamed(&two, "B", 3).unwrap_err().contains("more than one part"));
        let mut epilogue = body("B", &[("Content-Length: 2", b"ab")]);
        epilogue.extend_from_slice(&[b'x'; 500]);
        assert_eq!(streamed(&epilogue, "B", 7), Ok(b"ab".to_vec()));
        let long = body("B", &[("Content-Length: 2", b"abcd")]);
        assert!(streamed(&long, "B", 3).unwrap_err().contains("longer than its Content-Length"));
    }
}
