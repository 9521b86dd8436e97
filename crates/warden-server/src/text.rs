//! A program's output as text while it streams. A streamed chunk is what one read of the
//! program's pipe returned, and a read may end inside a character (a program that writes `é`
//! a byte at a time, or a 64 KiB read in the middle of a long text): converted chunk by
//! chunk, one character would become two U+FFFD. [`Utf8Stream`] holds an incomplete character
//! back until the bytes that complete it arrive, so the text sent is what the whole output
//! reads as (`String::from_utf8_lossy` of all of it), wherever the reads fell.

use warden_core::Stream;

/// One stream's bytes turned into text at character boundaries.
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    /// The start of a character whose other bytes have not arrived yet (at most 3 bytes).
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// The text of `bytes` after what was held back, up to the last complete character; an
    /// invalid sequence is one U+FFFD, as `String::from_utf8_lossy` writes it (and the chunk
    /// then carries the bytes it stands for). May be empty.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Chunk {
        let joined;
        let whole: &[u8] = if self.pending.is_empty() {
            bytes
        } else {
            self.pending.extend_from_slice(bytes);
            joined = std::mem::take(&mut self.pending);
            &joined
        };
        let mut input = whole;
        let mut text = String::with_capacity(input.len());
        let mut replaced = false;
        loop {
            match std::str::from_utf8(input) {
                Ok(valid) => {
                    text.push_str(valid);
                    break;
                }
                Err(e) => {
                    let (valid, rest) = input.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // The input ends inside a character that may still be completed.
                        None => {
                            self.pending = rest.to_vec();
                            break;
                        }
                        Some(invalid) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            replaced = true;
                            input = &rest[invalid..];
                        }
                    }
                }
            }
        }
        let exact = replaced.then(|| whole[..whole.len() - self.pending.len()].to_vec());
        Chunk { text, exact }
    }

    /// [`Utf8Stream::push`] of the start of `bytes`, at most [`MESSAGE_OUTPUT`] bytes with
    /// what was held back (at most 3 bytes, the start of a character cut at the last piece's
    /// end), and how many bytes of `bytes` it took.
    fn first_piece(&mut self, bytes: &[u8]) -> (Chunk, usize) {
        let took = (MESSAGE_OUTPUT - self.pending.len()).min(bytes.len());
        (self.push(&bytes[..took]), took)
    }

    /// What was held back, once the stream has ended: a character that was never completed
    /// is one U+FFFD (with its bytes). Empty when nothing was.
    pub(crate) fn finish(&mut self) -> Chunk {
        let pending = std::mem::take(&mut self.pending);
        Chunk {
            text: String::from_utf8_lossy(&pending).into_owned(),
            exact: (!pending.is_empty()).then_some(pending),
        }
    }
}

/// A piece of a stream's text.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// The text.
    pub(crate) text: String,
    /// The bytes it was read from, when some were not UTF-8 (the text has U+FFFD for them).
    pub(crate) exact: Option<Vec<u8>>,
}

impl Chunk {
    /// Whether there is nothing to send.
    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// `data` (the text) and, when the text lost bytes, `data_base64` (them all): what the own
    /// API's output messages carry.
    pub(crate) fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        use base64::Engine as _;
        let mut fields = serde_json::Map::new();
        fields.insert("data".into(), self.text.clone().into());
        if let Some(exact) = &self.exact {
            let encoded = base64::engine::general_purpose::STANDARD.encode(exact);
            fields.insert("data_base64".into(), encoded.into());
        }
        fields
    }
}

/// The most bytes of a program's output one streamed message carries (a WebSocket's output
/// message, an event of `/v1/executions/stream`). What a slow client has not taken is merged
/// (`outbox.rs`), so without a bound one message could hold everything a program wrote: past
/// a client's limit (tungstenite's 16 MiB a frame, Python `websockets`' 1 MiB a message),
/// and all of it encoded at once in the server's memory.
pub(crate) const MESSAGE_OUTPUT: usize = 64 << 10;

/// A run's stdout and stderr, each a [`Utf8Stream`].
#[derive(Debug, Default)]
pub(crate) struct OutputText {
    stdout: Utf8Stream,
    stderr: Utf8Stream,
}

impl OutputText {
    /// [`Utf8Stream::push`] on `stream` of `bytes` in pieces, each of at most [`MESSAGE_OUTPUT`] bytes of
    /// output (what was held back included, so a piece's text, when the output is valid
    /// UTF-8, is at most that many bytes), the empty ones passed over: one message each.
    pub(crate) fn pieces<'a>(&'a mut self, stream: Stream, bytes: &'a [u8]) -> Pieces<'a> {
        Pieces {
            stream: self.of(stream),
            rest: bytes,
        }
    }

    /// The first of [`OutputText::pieces`] of `bytes`, and how many bytes of `bytes` it took:
    /// for a caller that makes one message at a time of output it holds.
    pub(crate) fn first_piece(&mut self, stream: Stream, bytes: &[u8]) -> (Chunk, usize) {
        self.of(stream).first_piece(bytes)
    }

    /// Each stream's [`Utf8Stream::finish`], for those that held something back.
    pub(crate) fn finish(&mut self) -> Vec<(Stream, Chunk)> {
        [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .map(|stream| (stream, self.of(stream).finish()))
            .filter(|(_, chunk)| !chunk.is_empty())
            .collect()
    }

    fn of(&mut self, stream: Stream) -> &mut Utf8Stream {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }
}

/// A stream's output in pieces of at most [`MESSAGE_OUTPUT`] bytes ([`OutputText::pieces`]).
pub(crate) struct Pieces<'a> {
    stream: &'a mut Utf8Stream,
    rest: &'a [u8],
}

impl Iterator for Pieces<'_> {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        while !self.rest.is_empty() {
            let (chunk, took) = self.stream.first_piece(self.rest);
            self.rest = &self.rest[took..];
            if !chunk.is_empty() {
                return Some(chunk);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes` read in pieces cut at `cuts`, as the text sent.
    fn streamed(bytes: &[u8], cuts: &[usize]) -> String {
        let mut stream = Utf8Stream::default();
        let mut text = String::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            text.push_str(&stream.push(&bytes[start..cut]).text);
            start = cut;
        }
        text + &stream.finish().text
    }

    /// `bytes` read in pieces cut at `cuts`, as the bytes the chunks stand for: each chunk's
    /// exact bytes when it has them, else its text's.
    fn exact(bytes: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut stream = Utf8Stream::default();
        let mut out = Vec::new();
        let mut start = 0;
        let mut take = |chunk: Chunk| match chunk.exact {
            Some(exact) => out.extend_from_slice(&exact),
            None => out.extend_from_slice(chunk.text.as_bytes()),
        };
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            take(stream.push(&bytes[start..cut]));
            start = cut;
        }
        take(stream.finish());
        out
    }

    #[test]
    fn a_character_cut_by_a_read_arrives_whole() {
        let text = "é€𝄞 ok\n".as_bytes();
        for cut in 0..=text.len() {
            assert_eq!(streamed(text, &[cut]), "é€𝄞 ok\n", "cut at {cut}");
        }
        // One byte at a time.
        let every: Vec<usize> = (1..text.len()).collect();
        assert_eq!(streamed(text, &every), "é€𝄞 ok\n");
        let mut stream = Utf8Stream::default();
        assert_eq!(stream.push(&[0xe2, 0x82]), Chunk::default());
        let euro = stream.push(&[0xac, b'!']);
        assert_eq!((euro.text.as_str(), euro.exact), ("€!", None));
    }

    #[test]
    fn the_text_is_the_whole_outputs_lossy_reading_wherever_the_reads_fell() {
        let samples: [&[u8]; 5] = [
            b"\xff\xfeok\n",
            b"a\xe2\x82b\xf0\x9f\x98\x80c",
            b"\xf0\x9f\x98",
            b"\xc3\xa9\xc3",
            b"\xed\xa0\x80x\xf4\x90\x80\x80y\xc0\xaf",
        ];
        for bytes in samples {
            let whole = String::from_utf8_lossy(bytes).into_owned();
            for first in 0..=bytes.len() {
                for second in first..=bytes.len() {
                    assert_eq!(
                        streamed(bytes, &[first, second]),
                        whole,
                        "{bytes:?} cut at {first} and {second}"
                    );
                    assert_eq!(
                        exact(bytes, &[first, second]),
                        bytes,
                        "{bytes:?} cut at {first} and {second}: the exact bytes"
                    );
                }
            }
        }
    }

    /// Bug hunt: a slow client's merged output went out as one message of any size.
    #[test]
    fn output_comes_in_pieces_of_at_most_64_kib_cut_at_characters() {
        let output = format!("x{}", "é".repeat(100_000)).into_bytes();
        let mut text = OutputText::default();
        let pieces: Vec<Chunk> = text.pieces(Stream::Stdout, &output).collect();
        assert!(pieces.len() > 1);
        assert!(pieces
            .iter()
            .all(|p| p.text.len() <= MESSAGE_OUTPUT && p.exact.is_none()));
        let whole: String = pieces.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(whole.as_bytes(), output);
        assert!(text.finish().is_empty());
    }

    #[test]
    fn each_stream_holds_back_its_own_bytes() {
        let mut output = OutputText::default();
        assert!(output.first_piece(Stream::Stdout, b"\xc3").0.is_empty());
        assert!(output.first_piece(Stream::Stderr, b"\xe2\x82").0.is_empty());
        assert_eq!(output.first_piece(Stream::Stdout, b"\xa9").0.text, "é");
        let held = Chunk {
            text: char::REPLACEMENT_CHARACTER.to_string(),
            exact: Some(b"\xe2\x82".to_vec()),
        };
        assert_eq!(output.finish(), [(Stream::Stderr, held)]);
        assert!(output.finish().is_empty());
        let fields = output.first_piece(Stream::Stdout, b"a\xffb").0.fields();
        assert_eq!(
            serde_json::Value::Object(fields),
            serde_json::json!({"data": "a\u{fffd}b", "data_base64": "Yf9i"})
        );
    }
}
