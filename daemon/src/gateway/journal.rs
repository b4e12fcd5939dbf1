//! The gateway's journal: every signed item is appended here and fsynced before anything else
//! happens to it (docs/gateway.md, "Journal"). Segment files `<first index>.log` hold frames
//! `len u32 LE ‖ crc32c u32 LE ‖ JSON record`; each segment opens with a checkpoint of the
//! gateway's state, so old delivered segments can be deleted. The file `cursor` holds the index of
//! the first record not yet acknowledged by the service (replaced atomically). On open, a torn
//! frame at the end of the newest segment — a write the power cut interrupted, never acknowledged
//! to anyone — is cut off; damage anywhere else stops the gateway rather than skip data.

use eyre::{Result, WrapErr, bail, ensure};
use serde::{Serialize, de::DeserializeOwned};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
const HEADER: usize = 8;
/// Largest record accepted (a sanity bound against a corrupted length field).
pub const MAX_RECORD: usize = 4 << 20;

/// A position in the journal: the record `index`, found at `offset` of segment `segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// First index of the segment.
    pub segment: u64,
    /// Byte offset in it.
    pub offset: u64,
    /// The record's index.
    pub index: u64,
}

/// A record read back, with the position just after it (acknowledge that to pass it).
#[derive(Debug, Clone)]
pub struct Entry<R> {
    /// Its index.
    pub index: u64,
    /// The record.
    pub record: R,
    /// The position after it.
    pub next: Position,
}

/// An append-only, fsynced log of `R` records with a delivery cursor.
#[derive(Debug)]
pub struct Journal<R> {
    dir: PathBuf,
    segments: Vec<u64>,
    file: File,
    size: u64,
    next_index: u64,
    cursor: Position,
    max_segment_bytes: u64,
    _records: std::marker::PhantomData<R>,
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).wrap_err_with(|| format!("cannot sync {}", dir.display()))
}

fn frame<R: Serialize>(record: &R, out: &mut Vec<u8>) {
    let body = serde_json::to_vec(record).expect("journal records serialize");
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&CRC32C.checksum(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

/// What a scan of a segment found.
struct Scan<R> {
    /// `(offset, record)` of each whole, valid frame.
    frames: Vec<(u64, R)>,
    /// Where the valid frames end: a torn or damaged frame starts there, or the file ends.
    end: u64,
    /// The file's length.
    len: u64,
}

/// Reads up to `max` frames from `offset` of a segment.
fn scan<R: DeserializeOwned>(path: &Path, offset: u64, max: usize) -> Result<Scan<R>> {
    let mut file = File::open(path).wrap_err_with(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut out = Vec::new();
    let mut at = offset;
    let mut header = [0u8; HEADER];
    while out.len() < max && at + HEADER as u64 <= len {
        reader.read_exact(&mut header)?;
        let n = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        if n > MAX_RECORD || at + (HEADER + n) as u64 > len {
            break;
        }
        let mut body = vec![0u8; n];
        reader.read_exact(&mut body)?;
        if CRC32C.checksum(&body) != u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) {
            break;
        }
        let Ok(record) = serde_json::from_slice(&body) else { break };
        out.push((at, record));
        at += (HEADER + n) as u64;
    }
    Ok(Scan { frames: out, end: at, len })
}

impl<R: Serialize + DeserializeOwned> Journal<R> {
    /// Opens (or creates) the journal in `dir`, cutting off a torn tail. `first` is the record a
    /// new journal starts with (the initial checkpoint). Returns the journal and every retained
    /// record with its index, oldest first, for the caller to rebuild its state.
    pub fn open(dir: &Path, max_segment_bytes: u64, first: impl FnOnce() -> R) -> Result<(Self, Vec<(u64, R)>)> {
        std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        let mut segments: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
            .collect();
        segments.sort_unstable();
        if segments.is_empty() {
            let mut file = new_segment(dir, 0)?;
            let mut buf = Vec::new();
            frame(&first(), &mut buf);
            file.write_all(&buf)?;
            file.sync_data()?;
            write_cursor(dir, 0)?;
        }
        let segments = if segments.is_empty() { vec![0] } else { segments };
        let mut records = Vec::new();
        let mut index = segments[0];
        let mut size = 0;
        for (k, &first_index) in segments.iter().enumerate() {
            ensure!(
                first_index == index,
                "journal: segment {first_index} follows record {index}: a segment is missing"
            );
            let path = segment_path(dir, first_index);
            let Scan { frames, end, len } = scan::<R>(&path, 0, usize::MAX)?;
            let newest = k + 1 == segments.len();
            if end < len {
                ensure!(newest, "journal: {} is damaged at byte {end}; refusing to skip data", path.display());
                tracing::warn!(path = %path.display(), kept = end, dropped = len - end, "cutting off a torn write");
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(end)?;
                f.sync_all()?;
            }
            index += frames.len() as u64;
            records.extend(frames.into_iter().enumerate().map(|(i, (_, r))| (first_index + i as u64, r)));
            size = end;
        }
        let last = *segments.last().expect("one segment");
        let file = OpenOptions::new().append(true).open(segment_path(dir, last))?;
        let cursor_index = read_cursor(dir)?;
        ensure!(
            cursor_index >= segments[0] && cursor_index <= index,
            "journal: cursor {cursor_index} is outside the records {}..{index}",
            segments[0]
        );
        let mut j = Self {
            dir: dir.to_path_buf(),
            segments,
            file,
            size,
            next_index: index,
            cursor: Position { segment: 0, offset: 0, index: 0 },
            max_segment_bytes,
            _records: std::marker::PhantomData,
        };
        j.cursor = j.locate(cursor_index)?;
        Ok((j, records))
    }

    /// Where record `index` starts.
    fn locate(&self, index: u64) -> Result<Position> {
        let k = self.segments.partition_point(|&s| s <= index).saturating_sub(1);
        let segment = self.segments[k];
        let skip = (index - segment) as usize;
        let Scan { frames, end, .. } = scan::<serde::de::IgnoredAny>(&segment_path(&self.dir, segment), 0, skip)?;
        let offset = if frames.len() == skip { end } else { bail!("journal: record {index} not found") };
        Ok(Position { segment, offset, index })
    }

    /// Appends records, durably (one fsync for all of them). Returns the first one's index.
    pub fn append(&mut self, records: &[R]) -> Result<u64> {
        let mut buf = Vec::with_capacity(records.len() * 512);
        for r in records {
            frame(r, &mut buf);
        }
        self.file.write_all(&buf).wrap_err("journal write")?;
        self.file.sync_data().wrap_err("journal fsync")?;
        self.size += buf.len() as u64;
        let first = self.next_index;
        self.next_index += records.len() as u64;
        Ok(first)
    }

    /// Whether the newest segment is full.
    pub fn is_full(&self) -> bool {
        self.size >= self.max_segment_bytes
    }

    /// Starts a new segment opened by `checkpoint` (the caller's state now).
    pub fn rotate(&mut self, checkpoint: R) -> Result<()> {
        self.file = new_segment(&self.dir, self.next_index)?;
        self.size = 0;
        self.segments.push(self.next_index);
        self.append(&[checkpoint])?;
        Ok(())
    }

    /// Index of the next record to be appended.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The first record not yet acknowledged.
    pub fn cursor(&self) -> Position {
        self.cursor
    }

    /// Up to `max` records from the cursor on, each with the position after it.
    pub fn peek(&self, max: usize) -> Result<Vec<Entry<R>>> {
        let mut pos = self.cursor;
        let mut out: Vec<Entry<R>> = Vec::new();
        while out.len() < max && pos.index < self.next_index {
            let path = segment_path(&self.dir, pos.segment);
            let Scan { frames, end, .. } = scan::<R>(&path, pos.offset, max - out.len())?;
            if frames.is_empty() {
                // End of this segment: continue in the next one.
                let k = self.segments.binary_search(&pos.segment).map_err(|_| eyre::eyre!("segment vanished"))?;
                let Some(&next) = self.segments.get(k + 1) else { break };
                ensure!(next == pos.index, "journal: segment {next} does not start at record {}", pos.index);
                pos = Position { segment: next, offset: 0, index: next };
                continue;
            }
            let ends: Vec<u64> = frames.iter().skip(1).map(|(at, _)| *at).chain([end]).collect();
            for ((_, record), end) in frames.into_iter().zip(ends) {
                pos = Position { segment: pos.segment, offset: end, index: pos.index + 1 };
                out.push(Entry { index: pos.index - 1, record, next: pos });
            }
        }
        Ok(out)
    }

    /// Marks everything before `pos` delivered (the cursor file is replaced atomically).
    pub fn acknowledge(&mut self, pos: Position) -> Result<()> {
        if pos.index > self.cursor.index {
            write_cursor(&self.dir, pos.index)?;
            self.cursor = pos;
        }
        Ok(())
    }

    /// Deletes the oldest segments that are wholly delivered, keeping `keep` of them.
    pub fn prune(&mut self, keep: usize) -> Result<usize> {
        let delivered = self.segments.iter().skip(1).take_while(|&&next| next <= self.cursor.index).count();
        let remove = delivered.saturating_sub(keep);
        for first in self.segments.drain(..remove) {
            std::fs::remove_file(segment_path(&self.dir, first))?;
        }
        if remove > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(remove)
    }

    /// Records appended but not yet acknowledged.
    pub fn backlog(&self) -> u64 {
        self.next_index - self.cursor.index
    }
}

/// Creates an empty segment file, durably (the directory entry too).
fn new_segment(dir: &Path, first: u64) -> Result<File> {
    let path = segment_path(dir, first);
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .wrap_err_with(|| format!("cannot create {}", path.display()))?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

fn read_cursor(dir: &Path) -> Result<u64> {
    let path = dir.join("cursor");
    let text = std::fs::read_to_string(&path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    text.trim().parse().wrap_err_with(|| format!("{} is not a record index", path.display()))
}

fn write_cursor(dir: &Path, index: u64) -> Result<()> {
    let tmp = dir.join("cursor.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{index}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join("cursor"))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    type J = Journal<String>;

    fn open(dir: &Path) -> (J, Vec<(u64, String)>) {
        J::open(dir, 200, || "checkpoint".to_string()).unwrap()
    }

    #[test]
    fn appends_survive_reopen_and_the_cursor_moves_only_on_acknowledge() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, recs) = open(dir.path());
        assert_eq!(recs, vec![(0, "checkpoint".to_string())]);
        assert_eq!(j.append(&["a".into(), "b".into()]).unwrap(), 1);
        let got = j.peek(10).unwrap();
        let pos = got.last().unwrap().next;
        assert_eq!(
            got.iter().map(|e| (e.index, e.record.as_str())).collect::<Vec<_>>(),
            [(0, "checkpoint"), (1, "a"), (2, "b")]
        );
        assert_eq!(j.peek(2).unwrap().len(), 2, "peek honours max");
        drop(j);
        let (mut j, recs) = open(dir.path());
        assert_eq!(recs.len(), 3);
        assert_eq!(j.cursor().index, 0, "nothing acknowledged yet");
        j.acknowledge(pos).unwrap();
        j.append(&["c".into()]).unwrap();
        drop(j);
        let (j, _) = open(dir.path());
        let rest = j.peek(10).unwrap();
        assert_eq!((rest.len(), rest[0].index, rest[0].record.as_str()), (1, 3, "c"));
        assert_eq!(j.backlog(), 1);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_appending_continues() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = open(dir.path());
        j.append(&["whole".into()]).unwrap();
        drop(j);
        let seg = segment_path(dir.path(), 0);
        let good_len = std::fs::metadata(&seg).unwrap().len();
        // A power cut in the middle of the next frame: its header and half its body reached the card.
        let mut torn = Vec::new();
        frame(&"lost in the cut".to_string(), &mut torn);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(f);
        let (mut j, recs) = open(dir.path());
        assert_eq!(recs.last().unwrap().1, "whole");
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_len, "torn frame removed");
        assert_eq!(j.append(&["next".into()]).unwrap(), 2, "the torn record's index is reused");
        drop(j);
        // A frame whose bytes were damaged (CRC mismatch) at the tail is cut the same way.
        let mut bad = Vec::new();
        frame(&"flipped".to_string(), &mut bad);
        let last = bad.len() - 2;
        bad[last] ^= 0x01;
        OpenOptions::new().append(true).open(&seg).unwrap().write_all(&bad).unwrap();
        let (_, recs) = open(dir.path());
        assert_eq!(recs.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(), ["checkpoint", "whole", "next"]);
    }

    #[test]
    fn segments_rotate_deliver_across_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = open(dir.path());
        let mut appended = 0;
        while j.segments.len() < 4 {
            j.append(&[format!("record-{appended}")]).unwrap();
            appended += 1;
            if j.is_full() {
                j.rotate("checkpoint".into()).unwrap();
            }
        }
        let total = j.next_index();
        // Deliver everything, a few records at a time, across segment boundaries.
        let mut seen = Vec::new();
        loop {
            let batch = j.peek(3).unwrap();
            let Some(last) = batch.last() else { break };
            seen.extend(batch.iter().map(|e| e.index));
            j.acknowledge(last.next).unwrap();
        }
        assert_eq!(seen, (0..total).collect::<Vec<_>>(), "every record once, in order");
        assert_eq!(j.prune(1).unwrap(), 2, "three segments wholly delivered, one kept");
        drop(j);
        let (j, recs) = open(dir.path());
        assert_eq!(recs.first().unwrap().1, "checkpoint", "the oldest kept segment opens with a checkpoint");
        assert_eq!(j.backlog(), 0);
        // A segment that is damaged in the middle is not silently skipped.
        let first = j.segments[0];
        drop(j);
        let path = segment_path(dir.path(), first);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 1] ^= 0xFF;
        std::fs::write(&path, bytes).unwrap();
        let err = J::open(dir.path(), 200, || "checkpoint".into()).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }
}
