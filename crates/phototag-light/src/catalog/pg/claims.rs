//! Claims: how workers on many hosts classify each content once. Before decoding a
//! content the catalog does not have, a worker claims its hash: a row in `claims` with a
//! lease (`expires_ms`). The claim is granted in one statement only when no image of that
//! content is stored and no other worker holds a live lease on it; a worker renews the
//! leases of what it is still working on, and releases a claim when the content failed
//! (so another file with it may be tried). A worker killed mid-batch simply stops
//! renewing: its claims expire and another worker takes them over.
//!
//! Claims go through a connection of their own (decoder threads claim while the writer's
//! transaction is open), committed at once so that other workers see them.
//!
//! May not: write images, tags or files.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postgres::Client;

use super::{now_ms, PgCatalog};
use crate::catalog::{CatalogError, Hash};

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This worker holds it: decode and classify.
    Mine,
    /// The catalog has the content now (another worker classified it).
    Known,
    /// Another worker holds a live lease on it: look again later.
    Elsewhere,
}

/// This process's claims on contents (see the module's documentation).
pub struct Claimer {
    client: Mutex<Client>,
    /// Contents claimed and not yet written or released, and when their leases were last
    /// renewed.
    held: Mutex<(HashSet<Hash>, Instant)>,
    /// host:pid:nonce, unique per process start.
    worker: String,
    lease: Duration,
    shown: String,
}

impl std::fmt::Debug for Claimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimer")
            .field("worker", &self.worker)
            .field("lease", &self.lease)
            .finish()
    }
}

impl PgCatalog {
    /// A claimer on a connection of its own.
    pub fn claimer(&self) -> Result<Claimer, CatalogError> {
        let mut client = self.connector.connect()?;
        // Claims that expired a lease ago: their workers finished or died.
        let stale = now_ms() - 2 * self.target.options.claim_lease.as_millis() as i64;
        if let Err(e) = client.execute("DELETE FROM claims WHERE expires_ms < $1", &[&stale]) {
            tracing::debug!("old claims not swept: {}", self.error(e));
        }
        let nonce = now_ms() % 1_000_000;
        Ok(Claimer {
            client: Mutex::new(client),
            held: Mutex::new((HashSet::new(), Instant::now())),
            worker: format!("{}:{}:{nonce}", self.host, std::process::id()),
            lease: self.target.options.claim_lease,
            shown: self.target.to_string(),
        })
    }
}

impl Claimer {
    fn error(&self, e: postgres::Error) -> CatalogError {
        super::to_catalog_error(&self.shown, e)
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, (HashSet<Hash>, Instant)> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lease_ms(&self) -> i64 {
        self.lease.as_millis().min(i64::MAX as u128) as i64
    }

    /// Claims a content for this worker (see [`Claim`]): granted only when the catalog has
    /// no image of it at all.
    pub fn claim(&self, hash: &Hash) -> Result<Claim, CatalogError> {
        self.claim_where(hash, "SELECT 1 FROM images WHERE hash = $1")
    }

    /// Claims a content that waits in the queue (its image row recorded, not classified):
    /// granted unless another worker classified it already or holds a live lease on it.
    /// Workers on two hosts holding the same queued content classify it once.
    pub fn claim_queued(&self, hash: &Hash) -> Result<Claim, CatalogError> {
        self.claim_where(
            hash,
            "SELECT 1 FROM images WHERE hash = $1 AND classified_at <> 0",
        )
    }

    /// A claim on `hash`, granted when `known` (a query on `$1`, the hash) finds nothing
    /// and no live lease of another worker holds it.
    fn claim_where(&self, hash: &Hash, known: &str) -> Result<Claim, CatalogError> {
        let now = now_ms();
        let mut c = self.client();
        let granted = c
            .query_opt(
                &format!(
                    "INSERT INTO claims (hash, worker, expires_ms)
                     SELECT $1, $2, $3 WHERE NOT EXISTS ({known})
                     ON CONFLICT (hash) DO UPDATE
                         SET worker = excluded.worker, expires_ms = excluded.expires_ms
                         WHERE claims.expires_ms < $4
                     RETURNING 1"
                ),
                &[&&hash[..], &self.worker, &(now + self.lease_ms()), &now],
            )
            .map_err(|e| self.error(e))?
            .is_some();
        if granted {
            self.held().0.insert(*hash);
            return Ok(Claim::Mine);
        }
        let known = c
            .query_opt(known, &[&&hash[..]])
            .map_err(|e| self.error(e))?
            .is_some();
        Ok(if known {
            Claim::Known
        } else {
            Claim::Elsewhere
        })
    }

    /// Extends the leases of the contents this worker still holds, when a third of a lease
    /// has passed since the last renewal.
    pub fn renew_held(&self) -> Result<(), CatalogError> {
        let hashes: Vec<Hash> = {
            let mut held = self.held();
            if held.1.elapsed() < self.lease / 3 {
                return Ok(());
            }
            held.1 = Instant::now();
            held.0.iter().copied().collect()
        };
        if hashes.is_empty() {
            return Ok(());
        }
        let bytes: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
        self.client()
            .execute(
                "UPDATE claims SET expires_ms = $3 WHERE worker = $1 AND hash = ANY ($2)",
                &[&self.worker, &bytes, &(now_ms() + self.lease_ms())],
            )
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// These contents are written (committed): their claims are left to expire, so that a
    /// worker that looked just before the commit finds the image, not a free claim.
    pub fn finish(&self, hashes: &[Hash]) {
        let mut held = self.held();
        for h in hashes {
            held.0.remove(h);
        }
    }

    /// Gives a claim up (the content failed): another file with it may be tried. Best
    /// effort: a claim not released expires.
    pub fn release(&self, hash: &Hash) {
        self.held().0.remove(hash);
        if let Err(e) = self.client().execute(
            "DELETE FROM claims WHERE worker = $1 AND hash = $2",
            &[&self.worker, &&hash[..]],
        ) {
            tracing::debug!("claim not released (it will expire): {}", self.error(e));
        }
    }

    /// Gives up every claim still held (the run ends): contents never written are free
    /// for others at once. Best effort, as [`Claimer::release`].
    pub fn release_held(&self) {
        let hashes: Vec<Hash> = self.held().0.drain().collect();
        if hashes.is_empty() {
            return;
        }
        let bytes: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
        if let Err(e) = self.client().execute(
            "DELETE FROM claims WHERE worker = $1 AND hash = ANY ($2)",
            &[&self.worker, &bytes],
        ) {
            tracing::debug!("claims not released (they will expire): {}", self.error(e));
        }
    }

    /// How long a lease lasts.
    pub fn lease(&self) -> Duration {
        self.lease
    }
}
