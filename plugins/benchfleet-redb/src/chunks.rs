//! Writing record entries into `record_chunks`: appends to a run's last chunk, tier moves that
//! rewrite the chunks holding the moved entries, and the writer's per-run state that makes both
//! cheap (which chunk holds which digest, how full the last chunk is).

use std::collections::{HashMap, HashSet};

use benchfleet_model::RunId;
use benchfleet_store::{ErrorKind, RecordEntry, StoreError};
use redb::{ReadableTable, Table, WriteTransaction};

use crate::RECORD_CHUNKS;
use benchfleet_store::pack::{self, CHUNK_RECORDS};

/// Digests whose chunk the writer remembers (about 16 bytes each); past this, the state of every
/// run is dropped at once and rebuilt from its chunks when the run is written again.
const CACHED_DIGESTS: usize = 1 << 20;

/// An error of a write: redb's, or one already in store terms.
#[derive(Debug)]
pub(crate) enum WriteError {
    Db(redb::Error),
    Store(StoreError),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for WriteError {
            fn from(e: $t) -> Self {
                WriteError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

type Chunks<'t> = Table<'t, (&'static str, u32), &'static [u8]>;

/// What the writer knows about one run's chunks.
#[derive(Debug, Default)]
struct RunState {
    /// The number the next new chunk gets (chunks are numbered from 0 without gaps).
    next_seq: u32,
    /// Entries in chunk `next_seq - 1`.
    tail_len: usize,
    /// Every stored digest of the run → its chunk, keyed by the digest's first 8 bytes (a runner
    /// writing 100,000 records keeps 100,000 of these: 12 bytes each, not 36). A key says where
    /// the digest would be; a hit is confirmed in that chunk (only re-puts hit).
    digests: HashMap<u64, u32>,
    /// Digests whose 8-byte prefix another digest of the run already has (practically never).
    full: HashMap<[u8; 32], u32>,
    /// The entries of the last chunk, as last written, when it is not full (appends then need
    /// no decoding).
    tail: Option<Vec<RecordEntry>>,
}

/// A moved entry with no stored row: the move is refused as a whole.
fn not_stored(e: &RecordEntry) -> WriteError {
    StoreError::new(
        ErrorKind::NotFound,
        "redb",
        "move_records",
        "no catalog entry with this digest; nothing was moved",
    )
    .with_key(e.digest)
    .into()
}

fn prefix(d: &[u8; 32]) -> u64 {
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

impl RunState {
    /// Note that `d` (not stored before) is in chunk `seq`.
    fn remember(&mut self, d: &[u8; 32], seq: u32) {
        match self.digests.entry(prefix(d)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(seq);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.full.insert(*d, seq);
            }
        }
    }

    /// The chunk that may hold `d`: certain for `full`, to be confirmed for a prefix.
    fn candidate(&self, d: &[u8; 32]) -> Option<u32> {
        self.full
            .get(d)
            .or_else(|| self.digests.get(&prefix(d)))
            .copied()
    }

    /// Whether `d` is stored: a prefix hit is confirmed in its chunk.
    fn holds(&self, table: &Chunks<'_>, id: &RunId, d: &[u8; 32]) -> Result<bool, WriteError> {
        if self.full.contains_key(d) {
            return Ok(true);
        }
        let Some(&seq) = self.digests.get(&prefix(d)) else {
            return Ok(false);
        };
        let found = |chunk: &[RecordEntry]| chunk.iter().any(|e| e.digest.as_bytes() == d);
        match &self.tail {
            Some(tail) if seq + 1 == self.next_seq => Ok(found(tail)),
            _ => Ok(found(&read_chunk(table, id, seq)?)),
        }
    }

    fn len(&self) -> usize {
        self.digests.len() + self.full.len()
    }
}

/// The writer's per-run state. It mirrors committed data only: after a failed transaction the
/// writer calls [`Runs::clear`].
#[derive(Debug, Default)]
pub(crate) struct Runs {
    map: HashMap<String, RunState>,
    /// Digests in `map`, all runs together.
    digests: usize,
}

fn parse_run(run: &str) -> Result<RunId, StoreError> {
    run.parse().map_err(|_| {
        StoreError::new(
            ErrorKind::Corrupt,
            "redb",
            "read record chunk",
            "a record chunk is keyed by something that is not a run id; restore a backup",
        )
        .with_key(run)
    })
}

fn load_state(table: &Chunks<'_>, run: &str) -> Result<RunState, WriteError> {
    let id = parse_run(run)?;
    let mut st = RunState::default();
    for item in table.range((run, 0)..=(run, u32::MAX))? {
        let (k, v) = item?;
        let seq = k.value().1;
        let entries = pack::decode(&id, v.value())?;
        for e in &entries {
            st.remember(e.digest.as_bytes(), seq);
        }
        st.next_seq = seq + 1;
        st.tail_len = entries.len();
    }
    Ok(st)
}

/// `entries` grouped by run, in the order runs first appear.
fn by_run(entries: &[RecordEntry]) -> Vec<(&str, Vec<&RecordEntry>)> {
    let mut order: Vec<(&str, Vec<&RecordEntry>)> = Vec::new();
    let mut slot: HashMap<&str, usize> = HashMap::new();
    for e in entries {
        let i = *slot.entry(e.run_id.as_str()).or_insert_with(|| {
            order.push((e.run_id.as_str(), Vec::new()));
            order.len() - 1
        });
        order[i].1.push(e);
    }
    order
}

fn read_chunk(table: &Chunks<'_>, id: &RunId, seq: u32) -> Result<Vec<RecordEntry>, WriteError> {
    let Some(v) = table.get((id.as_str(), seq))? else {
        return Err(StoreError::new(
            ErrorKind::Corrupt,
            "redb",
            "read record chunk",
            format!("chunk {seq} of the run is missing; restore a backup"),
        )
        .with_key(id)
        .into());
    };
    Ok(pack::decode(id, v.value())?)
}

impl Runs {
    /// Forget everything (after a transaction that did not commit).
    pub fn clear(&mut self) {
        self.map.clear();
        self.digests = 0;
    }

    fn state<'s>(
        &'s mut self,
        table: &Chunks<'_>,
        run: &str,
    ) -> Result<&'s mut RunState, WriteError> {
        if !self.map.contains_key(run) {
            if self.digests >= CACHED_DIGESTS {
                self.clear();
            }
            let st = load_state(table, run)?;
            self.digests += st.len();
            self.map.insert(run.to_owned(), st);
        }
        Ok(self.map.get_mut(run).expect("inserted above"))
    }

    /// Append the entries whose digest is not stored yet (the first insert of a digest wins).
    pub fn insert(
        &mut self,
        txn: &WriteTransaction,
        entries: &[RecordEntry],
    ) -> Result<(), WriteError> {
        let mut table = txn.open_table(RECORD_CHUNKS)?;
        for (run, list) in by_run(entries) {
            let id = list[0].run_id.clone();
            let st = self.state(&table, run)?;
            let mut batch_seen = HashSet::new();
            let mut fresh: Vec<&RecordEntry> = Vec::with_capacity(list.len());
            for e in list {
                let d = e.digest.as_bytes();
                if batch_seen.insert(*d) && !st.holds(&table, &id, d)? {
                    fresh.push(e);
                }
            }
            if fresh.is_empty() {
                continue;
            }
            let mut pending = fresh.into_iter().peekable();
            let mut added = 0;
            if st.next_seq > 0 && st.tail_len < CHUNK_RECORDS {
                let seq = st.next_seq - 1;
                let mut chunk = match st.tail.take() {
                    Some(t) => t,
                    None => read_chunk(&table, &id, seq)?,
                };
                while chunk.len() < CHUNK_RECORDS {
                    let Some(e) = pending.next() else { break };
                    st.remember(e.digest.as_bytes(), seq);
                    added += 1;
                    chunk.push(e.clone());
                }
                table.insert((run, seq), pack::encode(&chunk).as_slice())?;
                st.tail_len = chunk.len();
                st.tail = (chunk.len() < CHUNK_RECORDS).then_some(chunk);
            }
            while pending.peek().is_some() {
                let seq = st.next_seq;
                let chunk: Vec<RecordEntry> =
                    pending.by_ref().take(CHUNK_RECORDS).cloned().collect();
                for e in &chunk {
                    st.remember(e.digest.as_bytes(), seq);
                }
                added += chunk.len();
                table.insert((run, seq), pack::encode(&chunk).as_slice())?;
                st.next_seq += 1;
                st.tail_len = chunk.len();
                st.tail = (chunk.len() < CHUNK_RECORDS).then_some(chunk);
            }
            self.digests += added;
        }
        Ok(())
    }

    /// Replace stored entries by `entries` (same digests, new tier and location). An entry with
    /// no stored row is `NotFound`, and the caller must not commit.
    pub fn relocate(
        &mut self,
        txn: &WriteTransaction,
        entries: &[RecordEntry],
    ) -> Result<(), WriteError> {
        let mut table = txn.open_table(RECORD_CHUNKS)?;
        for (run, list) in by_run(entries) {
            let id = list[0].run_id.clone();
            let st = self.state(&table, run)?;
            // The tail may be rewritten below: read it back next time.
            st.tail = None;
            let mut by_seq: HashMap<u32, Vec<&RecordEntry>> = HashMap::new();
            for e in list {
                let Some(seq) = st.candidate(e.digest.as_bytes()) else {
                    return Err(not_stored(e));
                };
                by_seq.entry(seq).or_default().push(e);
            }
            let mut seqs: Vec<u32> = by_seq.keys().copied().collect();
            seqs.sort_unstable();
            for seq in seqs {
                let moved = &by_seq[&seq];
                let mut chunk = read_chunk(&table, &id, seq)?;
                let mut changed = false;
                for e in moved {
                    // A prefix names a chunk; the entry itself must be in it.
                    let Some(slot) = chunk.iter_mut().find(|c| c.digest == e.digest) else {
                        return Err(not_stored(e));
                    };
                    if *slot != **e {
                        *slot = (*e).clone();
                        changed = true;
                    }
                }
                if changed {
                    table.insert((run, seq), pack::encode(&chunk).as_slice())?;
                }
            }
        }
        Ok(())
    }
}
