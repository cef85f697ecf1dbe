//! The two SHA-256 digests of a received object: of the stored Part 10 object (fixity) and of
//! the data set as received (identity of content, used in the key and for duplicates).
//!
//! Small objects are hashed inline. Once an object outgrows [`OFFLOAD_AFTER`], hashing moves to
//! a blocking thread fed through a bounded channel, so a large object is hashed on one core
//! while the association keeps receiving, scanning and writing on the other.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes hashed inline before hashing moves to its own thread.
const OFFLOAD_AFTER: u64 = 4 * 1024 * 1024;
/// Chunks in flight to the hashing thread (a few PDUs; bounds memory).
const CHANNEL_DEPTH: usize = 32;

type Pair = (Sha256, Sha256);

enum State {
    Inline(Box<Pair>, u64),
    Offloaded {
        chunks: mpsc::Sender<Bytes>,
        done: JoinHandle<Pair>,
    },
    Spent,
}

pub struct Digests(State);

/// Hex digests of the object and of its data set.
pub struct Finished {
    pub object: String,
    pub dataset: String,
}

impl Digests {
    /// Starts with the bytes that precede the data set in the stored object.
    pub fn new(header: &[u8]) -> Digests {
        let mut object = Sha256::new();
        object.update(header);
        Digests(State::Inline(Box::new((object, Sha256::new())), 0))
    }

    pub async fn update(&mut self, chunk: &[u8]) {
        match &mut self.0 {
            State::Inline(pair, seen) => {
                pair.0.update(chunk);
                pair.1.update(chunk);
                *seen += chunk.len() as u64;
                if *seen > OFFLOAD_AFTER {
                    self.offload();
                }
            }
            State::Offloaded { chunks, .. } => {
                // The thread only ends when the sender is dropped, so sending cannot fail
                // unless it panicked; `finish` reports that.
                let _ = chunks.send(Bytes::copy_from_slice(chunk)).await;
            }
            State::Spent => {}
        }
    }

    fn offload(&mut self) {
        let State::Inline(pair, _) = std::mem::replace(&mut self.0, State::Spent) else {
            return;
        };
        let (chunks, mut receiver) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
        let done = tokio::task::spawn_blocking(move || {
            let (mut object, mut dataset) = *pair;
            while let Some(chunk) = receiver.blocking_recv() {
                object.update(&chunk);
                dataset.update(&chunk);
            }
            (object, dataset)
        });
        self.0 = State::Offloaded { chunks, done };
    }

    /// The digests of everything passed to `update`; `None` only if the hashing thread died.
    pub async fn finish(self) -> Option<Finished> {
        let (object, dataset) = match self.0 {
            State::Inline(pair, _) => *pair,
            State::Offloaded { chunks, done } => {
                drop(chunks);
                done.await.ok()?
            }
            State::Spent => return None,
        };
        Some(Finished {
            object: hex::encode(object.finalize()),
            dataset: hex::encode(dataset.finalize()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(header: &[u8], data: &[u8]) -> (String, String) {
        let mut object = Sha256::new();
        object.update(header);
        object.update(data);
        (
            hex::encode(object.finalize()),
            hex::encode(Sha256::digest(data)),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_and_offloaded_agree_with_one_pass() {
        for size in [0usize, 1000, OFFLOAD_AFTER as usize + 300_000] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let mut digests = Digests::new(b"HEADER");
            for chunk in data.chunks(65_536) {
                digests.update(chunk).await;
            }
            let got = digests.finish().await.unwrap();
            assert_eq!(
                (got.object, got.dataset),
                expected(b"HEADER", &data),
                "size {size}"
            );
        }
    }
}
