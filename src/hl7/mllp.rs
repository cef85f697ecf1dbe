//! MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2): a message travels as
//! `<VT> message <FS><CR>`. Bytes before a start block are dropped, as the protocol's receivers
//! do; a frame over the size limit is refused without being kept in memory.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

pub const START: u8 = 0x0b;
pub const END: u8 = 0x1c;
pub const CR: u8 = 0x0d;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the message is over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the connection closed in the middle of a message")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What one read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    /// The peer closed the connection between messages.
    Closed,
}

/// Reads the next framed message. After [`FrameError::TooLarge`] the rest of the oversized
/// frame has been consumed, so the connection can go on with the next message.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    limit: usize,
) -> Result<Frame, FrameError> {
    // Skip to the start block.
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Frame::Closed);
        }
        match buf.iter().position(|b| *b == START) {
            Some(at) => {
                reader.consume(at + 1);
                break;
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
    let mut message = Vec::new();
    let mut oversized = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Err(FrameError::Truncated);
        }
        let (take, ended) = match buf.iter().position(|b| *b == END) {
            Some(at) => (at, true),
            None => (buf.len(), false),
        };
        if !oversized {
            if message.len() + take > limit {
                oversized = true;
                message = Vec::new();
            } else {
                message.extend_from_slice(&buf[..take]);
            }
        }
        if ended {
            reader.consume(take + 1);
            // The CR after the end block, if it came with it. Never wait for it: a sender that
            // leaves it out waits for our answer, and a late CR is skipped as noise before the
            // next start block anyway.
            if reader.buffer().first() == Some(&CR) {
                reader.consume(1);
            }
            break;
        }
        reader.consume(take);
    }
    if oversized {
        return Err(FrameError::TooLarge { limit });
    }
    Ok(Frame::Message(message))
}

pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &[u8],
) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(message.len() + 3);
    framed.push(START);
    framed.extend_from_slice(message);
    framed.extend_from_slice(&[END, CR]);
    writer.write_all(&framed).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], limit: usize) -> Vec<Result<Frame, String>> {
        let mut reader = tokio::io::BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            match read_frame(&mut reader, limit).await {
                Ok(Frame::Closed) => break,
                Ok(frame) => out.push(Ok(frame)),
                Err(FrameError::Truncated) => {
                    out.push(Err("truncated".into()));
                    break;
                }
                Err(e) => out.push(Err(e.to_string())),
            }
        }
        out
    }

    #[tokio::test]
    async fn frames_are_cut_at_the_end_block_whatever_the_buffer_size() {
        let input = b"noise\x0bMSH|a\rPID|b\x1c\x0d\x0bMSH|c\x1c\x0d";
        assert_eq!(
            frames(input, 100).await,
            vec![
                Ok(Frame::Message(b"MSH|a\rPID|b".to_vec())),
                Ok(Frame::Message(b"MSH|c".to_vec()))
            ]
        );
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_and_the_next_one_still_read() {
        let input = b"\x0b0123456789\x1c\x0d\x0bok\x1c\x0d";
        let got = frames(input, 5).await;
        assert_eq!(got.len(), 2);
        assert!(got[0].as_ref().is_err_and(|e| e.contains("over the limit")));
        assert_eq!(got[1], Ok(Frame::Message(b"ok".to_vec())));
    }

    #[tokio::test]
    async fn a_frame_cut_by_the_peer_is_truncated() {
        assert_eq!(
            frames(b"\x0bMSH|", 100).await,
            vec![Err("truncated".to_string())]
        );
    }
}
