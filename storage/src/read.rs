//! The read path: stream a byte range of a version, reading data shards directly and
//! reconstructing only when a shard is missing or fails its bitrot hash. Any bad shard queues
//! the key for healing (heal on read).

use crate::bitrot;
use crate::drive::{Drive, ShardReader};
use crate::erasure::join_data;
use crate::error::{Result, StorageError};
use crate::meta::{DataLocation, ObjectRecord, PartInfo};
use crate::set::{ErasureSet, ObjectView};
use bytes::Bytes;
use futures::future::join_all;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Where one shard of a version comes from.
enum ShardSource {
    Inline(Bytes),
    File {
        drive: Arc<dyn Drive>,
        data_dir: uuid::Uuid,
        open: HashMap<u32, Arc<dyn ShardReader>>,
    },
}

impl ShardSource {
    async fn read(&mut self, part: u32, offset: u64, len: usize) -> Result<Bytes> {
        match self {
            ShardSource::Inline(bytes) => {
                let (start, end) = (offset as usize, offset as usize + len);
                if end > bytes.len() {
                    return Err(StorageError::Corrupt(
                        "inline shard shorter than expected".into(),
                    ));
                }
                Ok(bytes.slice(start..end))
            }
            ShardSource::File {
                drive,
                data_dir,
                open,
            } => {
                let reader = match open.get(&part) {
                    Some(r) => r.clone(),
                    None => {
                        let r: Arc<dyn ShardReader> =
                            Arc::from(drive.open_shard(*data_dir, part).await?);
                        open.insert(part, r.clone());
                        r
                    }
                };
                reader.read_at(offset, len).await
            }
        }
    }
}

/// Reads blocks of one version from its shards.
pub(crate) struct BlockReader {
    set: Arc<ErasureSet>,
    /// Indexed by shard index.
    sources: Vec<Option<ShardSource>>,
    /// Shard indexes found missing or corrupt.
    pub(crate) bad: Vec<bool>,
}

impl BlockReader {
    /// A reader of version number `version` (0 = newest) of the agreeing drives' records.
    pub(crate) fn for_version(
        set: Arc<ErasureSet>,
        records: &[Option<ObjectRecord>],
        version: usize,
    ) -> Self {
        let n = set.drives.len();
        let mut sources: Vec<Option<ShardSource>> = (0..n).map(|_| None).collect();
        for (d, rec) in records.iter().enumerate() {
            let Some(obj) = rec
                .as_ref()
                .and_then(|r| r.versions.get(version))
                .and_then(|v| v.object.as_ref())
            else {
                continue;
            };
            let idx = obj.erasure.shard_index;
            if idx >= n {
                continue;
            }
            sources[idx] = match &obj.data {
                DataLocation::Inline(bytes) => {
                    Some(ShardSource::Inline(Bytes::from(bytes.clone())))
                }
                DataLocation::Dir(id) => Some(ShardSource::File {
                    drive: set.drives[d].clone(),
                    data_dir: *id,
                    open: HashMap::new(),
                }),
                // Read from the tier, never through shards.
                DataLocation::Remote => None,
            };
        }
        Self {
            set,
            sources,
            bad: vec![false; n],
        }
    }

    /// Reads the unframed shards of block `index` of `part` for the shard indexes in `want`;
    /// a shard that cannot be read or fails its hash is marked bad and left `None`.
    async fn read_shards(
        &mut self,
        part: &PartInfo,
        index: u64,
        want: &[usize],
        out: &mut [Option<Vec<u8>>],
    ) {
        let layout = self.set.layout;
        let (offset, len) = layout.shard_block_span(part.size, index);
        let reads = self
            .sources
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| want.contains(i))
            .map(|(i, s)| async move {
                let got = match s {
                    Some(src) => src.read(part.number, offset, len).await.ok(),
                    None => None,
                };
                (
                    i,
                    got.and_then(|framed| bitrot::unframe(&framed).map(<[u8]>::to_vec)),
                )
            });
        for (i, shard) in join_all(reads).await {
            if shard.is_none() {
                self.bad[i] = true;
            }
            out[i] = shard;
        }
    }

    /// Every shard of a block, reconstructed where needed (for healing).
    pub(crate) async fn read_all_shards(
        &mut self,
        part: &PartInfo,
        index: u64,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let n = self.sources.len();
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; n];
        let all: Vec<usize> = (0..n).collect();
        self.read_shards(part, index, &all, &mut shards).await;
        self.set
            .erasure
            .reconstruct(&mut shards)
            .map_err(StorageError::Corrupt)?;
        Ok(shards)
    }

    /// The bytes of block `index` of `part`, appended to `out`.
    pub(crate) async fn read_block(
        &mut self,
        part: &PartInfo,
        index: u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let layout = self.set.layout;
        let n = self.sources.len();
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; n];
        // Data shards first; parity only for what is missing.
        let mut want: Vec<usize> = (0..layout.data).filter(|i| !self.bad[*i]).collect();
        let mut tried: Vec<bool> = vec![false; n];
        loop {
            for i in &want {
                tried[*i] = true;
            }
            self.read_shards(part, index, &want, &mut shards).await;
            let have = shards.iter().filter(|s| s.is_some()).count();
            if have >= layout.data {
                break;
            }
            let need = layout.data - have;
            want = (0..n)
                .filter(|i| !tried[*i] && !self.bad[*i])
                .take(need)
                .collect();
            if want.is_empty() {
                // A shard that failed its hash in an earlier block may be sound in this one:
                // bitrot strikes blocks, not whole shards.
                want = (0..n)
                    .filter(|i| !tried[*i] && self.sources[*i].is_some())
                    .take(need)
                    .collect();
            }
            if want.is_empty() {
                return Err(StorageError::Corrupt(format!(
                    "block {index} of part {}: {have} of {} needed shards readable",
                    part.number, layout.data
                )));
            }
        }
        if shards.iter().take(layout.data).any(Option::is_none) {
            self.set
                .erasure
                .reconstruct_data(&mut shards)
                .map_err(StorageError::Corrupt)?;
        }
        let block_start = index * layout.block_size as u64;
        let block_len = (part.size - block_start).min(layout.block_size as u64) as usize;
        join_data(&shards, layout.data, block_len, out);
        Ok(())
    }
}

impl ErasureSet {
    /// Streams bytes `start..end` of the view's version through a small channel, so the next
    /// block is read while the previous one is being sent.
    pub fn read_range(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        view: ObjectView,
        start: u64,
        end: u64,
    ) -> mpsc::Receiver<Result<Bytes>> {
        let (tx, rx) = mpsc::channel(2);
        let set = self.clone();
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        tokio::spawn(async move {
            let mut reader = BlockReader::for_version(set.clone(), &view.records, view.index);
            let parts = &view.object().parts;
            let tx = &tx;
            let result = for_each_block(&mut reader, parts, start, end, |bytes| async move {
                tx.send(Ok(bytes)).await.is_ok()
            })
            .await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
            set.heal_if_bad(&reader, bucket, key);
        });
        rx
    }

    /// Bytes `start..end` of a version whose shards are inline in its records, decoded on the
    /// calling task: a small GET needs no reader task, and its body is ready with its headers.
    /// `None` when the version's data lives in shard files.
    pub async fn read_inline(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        view: &ObjectView,
        start: u64,
        end: u64,
    ) -> Option<Result<Bytes>> {
        if !matches!(view.object().data, DataLocation::Inline(_)) {
            return None;
        }
        let mut reader = BlockReader::for_version(self.clone(), &view.records, view.index);
        let mut chunks = Vec::new();
        let parts = &view.object().parts;
        let result = for_each_block(&mut reader, parts, start, end, |bytes| {
            chunks.push(bytes);
            std::future::ready(true)
        })
        .await;
        self.heal_if_bad(&reader, bucket.to_owned(), key.to_owned());
        Some(result.map(|()| match chunks.len() {
            1 => chunks.swap_remove(0),
            _ => Bytes::from(chunks.concat()),
        }))
    }

    fn heal_if_bad(&self, reader: &BlockReader, bucket: String, key: String) {
        if reader.bad.iter().any(|b| *b) {
            tracing::warn!(%bucket, %key, "bad shards found while reading; queued for healing");
            self.heal_queue.push(&bucket, &key);
        }
    }
}

/// Hands each block's slice of bytes `start..end` to `emit`, in order; stops early when
/// `emit` answers false (the client went away).
async fn for_each_block<F>(
    reader: &mut BlockReader,
    parts: &[PartInfo],
    start: u64,
    end: u64,
    mut emit: impl FnMut(Bytes) -> F,
) -> Result<()>
where
    F: std::future::Future<Output = bool>,
{
    let block_size = reader.set.layout.block_size as u64;
    let mut part_start = 0u64;
    for part in parts {
        let part_end = part_start + part.size;
        if part_end <= start || part.size == 0 {
            part_start = part_end;
            continue;
        }
        if part_start >= end {
            break;
        }
        let from = start.saturating_sub(part_start);
        let to = end.min(part_end) - part_start;
        let mut index = from / block_size;
        while index * block_size < to {
            let block_start = index * block_size;
            let block_len = (part.size - block_start).min(block_size) as usize;
            let layout = reader.set.layout;
            let mut block = Vec::with_capacity(layout.shard_len(block_len) * layout.data);
            reader.read_block(part, index, &mut block).await?;
            let lo = from.saturating_sub(block_start) as usize;
            let hi = ((to - block_start) as usize).min(block.len());
            if !emit(Bytes::from(block).slice(lo..hi)).await {
                return Ok(());
            }
            index += 1;
        }
        part_start = part_end;
    }
    Ok(())
}
