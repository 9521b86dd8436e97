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
    /// invalid sequence is one U+FFFD, as `String::from_utf8_lossy` writes it. May be empty.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        let joined;
        let mut input: &[u8] = if self.pending.is_empty() {
            bytes
        } else {
            self.pending.extend_from_slice(bytes);
            joined = std::mem::take(&mut self.pending);
            &joined
        };
        let mut text = String::with_capacity(input.len());
        loop {
            match std::str::from_utf8(input) {
                Ok(valid) => {
                    text.push_str(valid);
                    return text;
                }
                Err(e) => {
                    let (valid, rest) = input.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // The input ends inside a character that may still be completed.
                        None => {
                            self.pending = rest.to_vec();
                            return text;
                        }
                        Some(invalid) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            input = &rest[invalid..];
                        }
                    }
                }
            }
        }
    }

    /// What was held back, once the stream has ended: a character that was never completed
    /// is one U+FFFD. Empty when nothing was.
    pub(crate) fn finish(&mut self) -> String {
        let pending = std::mem::take(&mut self.pending);
        String::from_utf8_lossy(&pending).into_owned()
    }
}

/// A run's stdout and stderr, each a [`Utf8Stream`].
#[derive(Debug, Default)]
pub(crate) struct OutputText {
    stdout: Utf8Stream,
    stderr: Utf8Stream,
}

impl OutputText {
    /// [`Utf8Stream::push`] on `stream`.
    pub(crate) fn push(&mut self, stream: Stream, bytes: &[u8]) -> String {
        self.of(stream).push(bytes)
    }

    /// Each stream's [`Utf8Stream::finish`], for those that held something back.
    pub(crate) fn finish(&mut self) -> Vec<(Stream, String)> {
        [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .map(|stream| (stream, self.of(stream).finish()))
            .filter(|(_, text)| !text.is_empty())
            .collect()
    }

    fn of(&mut self, stream: Stream) -> &mut Utf8Stream {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
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
            text.push_str(&stream.push(&bytes[start..cut]));
            start = cut;
        }
        text + &stream.finish()
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
        assert_eq!(stream.push(&[0xe2, 0x82]), "");
        assert_eq!(stream.push(&[0xac, b'!']), "€!");
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
                }
            }
        }
    }

    #[test]
    fn each_stream_holds_back_its_own_bytes() {
        let mut output = OutputText::default();
        assert_eq!(output.push(Stream::Stdout, b"\xc3"), "");
        assert_eq!(output.push(Stream::Stderr, b"\xe2\x82"), "");
        assert_eq!(output.push(Stream::Stdout, b"\xa9"), "é");
        assert_eq!(
            output.finish(),
            [(Stream::Stderr, char::REPLACEMENT_CHARACTER.to_string())]
        );
        assert!(output.finish().is_empty());
    }
}
