//! Reading the record prefixes a search wants from `class_lists`, on the search's own
//! connection, and, when they are large, half of them on a second connection that reads
//! in the same snapshot (`pg_export_snapshot` / `SET TRANSACTION SNAPSHOT`).
//!
//! Sending tens of megabytes is the server's work, on one backend per connection: two
//! backends send them in about two thirds of the time (38 MB for `dog` in format 2: 190 ms
//! with one `psql`, 140 ms with two, whole processes). This thread takes in every list, the
//! second connection's as they arrive (nothing to merge after). On a 2-core machine that
//! also runs the server, `search dog` went from 190 to 167 ms (median of 15, whole
//! process) in format 2. Format 3 halved the bytes and the client's work is most of what
//! is left: there one connection did as well or better (24 MB for `animal>0.3`: 107 ms
//! median with two, 103 ms with one), hence the threshold of 32 MB. What the second
//! connection cannot read (the server refuses it a connection) is read on the first one.
//!
//! May not: write, or decide which lists are true (the caller has, in its snapshot).

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, GenericClient};

use super::connect::Connector;
use super::PgError;
use crate::catalog::lists::format::{Format, Part};
use crate::catalog::lists::Found;
use crate::catalog::CatalogError;

/// Below this many bytes to read, one connection reads them all (a second costs a
/// connection's start, about 10 ms, and competes with the client for the cores).
pub const SPLIT_FROM_BYTES: usize = 32 << 20;

/// The lists to read (in the caller's snapshot): class, bytes of its records wanted, and
/// where its hashes start in the `records` column (from 1) and how many bytes of them.
#[derive(Default)]
pub struct Reads {
    pub classes: Vec<i32>,
    pub lens: Vec<i32>,
    pub hashes_at: Vec<i32>,
    pub hashes_lens: Vec<i32>,
}

impl Reads {
    /// Those whose index `keep` takes.
    fn only(&self, keep: impl Fn(usize) -> bool) -> Reads {
        let pick = |v: &[i32]| {
            v.iter()
                .enumerate()
                .filter(|&(i, _)| keep(i))
                .map(|(_, &x)| x)
                .collect()
        };
        Reads {
            classes: pick(&self.classes),
            lens: pick(&self.lens),
            hashes_at: pick(&self.hashes_at),
            hashes_lens: pick(&self.hashes_lens),
        }
    }

    /// Bytes to read of list `i`.
    fn bytes(&self, i: usize) -> usize {
        self.lens[i].max(0) as usize + self.hashes_lens[i].max(0) as usize
    }
}

/// Reads the prefixes into `found` (each class read down to its minimum there), on `c`,
/// and half of them (by bytes) on a second connection from `connector` when there are at
/// least `split_from` bytes.
pub fn read(
    c: &mut impl GenericClient,
    connector: &Connector,
    reads: Reads,
    split_from: usize,
    found: &mut Found<'_>,
) -> Result<Read, postgres::Error> {
    let n = reads.classes.len();
    let lens: Vec<usize> = (0..n).map(|i| reads.bytes(i)).collect();
    let total: usize = lens.iter().sum();
    let at = if total >= split_from && n >= 2 {
        split_point(&lens, total)
    } else {
        n
    };
    let (mine, theirs) = (reads.only(|i| i < at), reads.only(|i| i >= at));
    let mut read = Read {
        bytes: 0,
        readable: true,
        split: false,
    };
    if theirs.classes.is_empty() {
        read_on(c, &mine, found, &mut read)?;
        return Ok(read);
    }
    let snapshot = export_snapshot(c)?;
    // The second connection's rows come here, and are taken in between this connection's
    // (one thread takes in every list: nothing to merge after).
    let (send, rows) = std::sync::mpsc::sync_channel::<postgres::Row>(8);
    let mut delivered = Vec::new();
    let theirs = &theirs;
    let (here, there) = std::thread::scope(|s| {
        let helper = s.spawn(move || -> Result<(), CatalogError> {
            let mut h = connector.connect()?;
            let to_catalog = |e: postgres::Error| CatalogError::Postgres(PgError(e));
            let mut tx = in_snapshot(&mut h, &snapshot).map_err(to_catalog)?;
            let mut it = query(&mut tx, theirs).map_err(to_catalog)?;
            while let Some(r) = FallibleIterator::next(&mut it).map_err(to_catalog)? {
                if send.send(r).is_err() {
                    break; // this connection failed
                }
            }
            drop(it);
            let _ = tx.commit();
            Ok(())
        });
        let here = (|| -> Result<(), postgres::Error> {
            let mut it = query(c, &mine)?;
            while let Some(r) = FallibleIterator::next(&mut it)? {
                read.take(found, &r);
                while let Ok(r) = rows.try_recv() {
                    delivered.push(read.take(found, &r));
                }
            }
            Ok(())
        })();
        if here.is_ok() {
            for r in rows.iter() {
                delivered.push(read.take(found, &r));
            }
        }
        drop(rows);
        let there = helper.join().unwrap_or_else(|_| {
            Err(CatalogError::Corrupt(
                "the second search connection's thread failed".into(),
            ))
        });
        (here, there)
    });
    here?;
    match there {
        Ok(()) => read.split = true,
        Err(e) => {
            tracing::debug!(error = %e, "search: the second connection failed; the first reads its lists");
            let rest = theirs.only(|i| !delivered.contains(&theirs.classes[i]));
            read_on(c, &rest, found, &mut read)?;
        }
    }
    Ok(read)
}

/// What [`read`] did.
pub struct Read {
    pub bytes: usize,
    /// False when a list did not parse.
    pub readable: bool,
    /// Whether a second connection read some of the lists.
    pub split: bool,
}

impl Read {
    /// Takes a row (class, prefix of its records, their hashes or none) into `found`; its
    /// class.
    fn take(&mut self, found: &mut Found<'_>, r: &postgres::Row) -> i32 {
        let class = r.get::<_, i32>(0);
        let part = Part {
            format: Format::Shared,
            records: r.get(1),
            hashes: r.get(2),
        };
        self.bytes += part.records.len() + part.hashes.len();
        self.readable = self.readable && found.add(class.max(0) as usize, part);
        class
    }
}

/// The first index whose lists, with those after it, are about half the bytes.
fn split_point(lens: &[usize], total: usize) -> usize {
    let mut sum = 0;
    for (i, &n) in lens.iter().enumerate() {
        if sum * 2 >= total {
            return i.max(1);
        }
        sum += n;
    }
    lens.len().saturating_sub(1).max(1)
}

/// Reads `reads` into `found`.
fn read_on(
    c: &mut impl GenericClient,
    reads: &Reads,
    found: &mut Found<'_>,
    read: &mut Read,
) -> Result<(), postgres::Error> {
    if reads.classes.is_empty() {
        return Ok(());
    }
    let mut rows = query(c, reads)?;
    while let Some(r) = FallibleIterator::next(&mut rows)? {
        read.take(found, &r);
    }
    Ok(())
}

/// The rows (class, prefix of its records, their hashes or none) of `reads`.
fn query<'c>(
    c: &'c mut impl GenericClient,
    reads: &Reads,
) -> Result<postgres::RowIter<'c>, postgres::Error> {
    // No ORDER BY: the order lists are taken in does not change the answer (`Found::add`),
    // and sorting the read prefixes made the server write them all to a temporary file
    // first (154 ms, not 32, for the 38 MB of `dog`).
    c.query_raw(
        "SELECT q.c, substring(l.records FROM 1 FOR q.n), substring(l.records FROM q.h FOR q.hn)
         FROM unnest($1::integer[], $2::integer[], $3::integer[], $4::integer[])
              AS q (c, n, h, hn)
         JOIN class_lists l ON l.class_index = q.c",
        [
            &reads.classes as &(dyn postgres::types::ToSql + Sync),
            &reads.lens,
            &reads.hashes_at,
            &reads.hashes_lens,
        ],
    )
}

/// The id of `c`'s snapshot, for another connection to read in. (Not in a savepoint:
/// PostgreSQL exports no snapshot from a subtransaction. It exports one on a standby too,
/// from version 10 on.)
fn export_snapshot(c: &mut impl GenericClient) -> Result<String, postgres::Error> {
    Ok(c.query_one("SELECT pg_export_snapshot()", &[])?.get(0))
}

/// A read-only transaction on `c` in the exported snapshot `id`.
fn in_snapshot<'c>(
    c: &'c mut Client,
    id: &str,
) -> Result<postgres::Transaction<'c>, postgres::Error> {
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    // An id is hex digits and dashes (`00000003-0000001B-1`); anything else is not put in
    // the statement.
    let id: String = id
        .chars()
        .filter(|ch| ch.is_ascii_hexdigit() || *ch == '-')
        .collect();
    tx.batch_execute(&format!(
        "SET TRANSACTION SNAPSHOT '{id}'; SET LOCAL jit = off"
    ))?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(c: &mut impl GenericClient) -> i64 {
        c.query_one("SELECT count(*) FROM seen", &[])
            .unwrap()
            .get(0)
    }

    #[test]
    fn the_split_halves_the_bytes() {
        assert_eq!(split_point(&[10, 10, 10, 10], 40), 2);
        assert_eq!(split_point(&[30, 1, 1, 1], 33), 1);
        assert_eq!(split_point(&[1, 1, 1, 30], 33), 3);
        assert_eq!(split_point(&[5, 5], 10), 1);
    }

    /// The second connection reads in the first one's snapshot: a row committed after
    /// the first took its snapshot is not seen there, though a fresh snapshot sees it.
    #[test]
    fn the_second_connection_reads_the_first_ones_snapshot() {
        let Some(db) = crate::catalog::test_server::database(
            "the_second_connection_reads_the_first_ones_snapshot",
        ) else {
            return;
        };
        let mut setup = db.client();
        setup
            .batch_execute("CREATE TABLE seen (n integer); INSERT INTO seen VALUES (1)")
            .unwrap();
        let mut first = db.client();
        let mut tx = first
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .unwrap();
        assert_eq!(count(&mut tx), 1);
        let id = export_snapshot(&mut tx).unwrap();
        setup.batch_execute("INSERT INTO seen VALUES (2)").unwrap();
        let mut second = db.client();
        let mut in_first = in_snapshot(&mut second, &id).unwrap();
        assert_eq!(count(&mut in_first), 1, "the first connection's snapshot");
        in_first.commit().unwrap();
        assert_eq!(count(&mut second), 2, "a fresh snapshot");
        // The first connection's transaction is still usable after the export.
        assert_eq!(count(&mut tx), 1);
        tx.commit().unwrap();
    }
}
